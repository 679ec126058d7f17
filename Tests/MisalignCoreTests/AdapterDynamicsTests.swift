import Foundation
import Testing
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// Adapter dynamics (Docs/AdapterDynamics.md) against explicit float64 updates formed by torch
/// (Tests/Fixtures/adapter_dynamics/make_adapter_dynamics.py), and its errors.
@Suite struct AdapterDynamicsTests {
    static let folders = (0..<3).map { Fixtures.url("adapter_dynamics/ckpt\($0)") }

    static func expected() throws -> [JSONValue] {
        try JSONValue.parse(Data(contentsOf: Fixtures.url("adapter_dynamics/expected.json")))["checkpoints"]!.arrayValue!
    }

    /// `|x - y| <= 1e-9 |y|`.
    static func close(_ x: Double?, _ y: Double?) -> Bool {
        guard let x, let y else { return x == nil && y == nil }
        return abs(x - y) <= 1e-9 * abs(y)
    }

    /// "0.q_proj" -> (layer 0, q).
    static func key(_ name: String) -> LoRAKey {
        let parts = name.split(separator: ".")
        return LoRAKey(layer: Int(parts[0])!, module: LoRAModule(rawValue: String(parts[1]))!)
    }

    @Test func everyQuantityMatchesTheExplicitUpdates() throws {
        let series = try AdapterDynamics.series(directories: Self.folders)
        let expected = try Self.expected()
        #expect(series.count == 3 && expected.count == 3)
        var compared = 0
        for (got, want) in zip(series, expected) {
            #expect(got.label == Fixtures.url("adapter_dynamics/\(want["folder"]!.stringValue!)").path)
            let modules = want["modules"]!.objectValue!
            #expect(got.modules.map(\.key) == modules.keys.map(Self.key).sorted())
            for (name, values) in modules.pairs {
                let m = try #require(got.module(Self.key(name)))
                for q in AdapterQuantity.allCases {
                    let w = values[q.rawValue]?.doubleValue
                    #expect(Self.close(m.value(q), w), "\(got.label) \(name) \(q.rawValue): \(m.value(q) ?? .nan) vs \(w ?? .nan)")
                    compared += w == nil ? 0 : 1
                }
            }
            let agg = want["aggregate"]!
            let pairs: [(Double?, String)] = [(got.norm, "norm"), (got.sigmaMax, "sigma_max"), (got.cosine, "cosine"),
                                              (got.meanCosine, "mean_cosine"), (got.incrementNorm, "increment_norm"),
                                              (got.incrementCosine, "increment_cosine"), (got.sigmaGrowth, "sigma_growth")]
            for (value, name) in pairs {
                let w = agg[name]?.doubleValue
                #expect(Self.close(value, w), "\(got.label) aggregate \(name): \(value ?? .nan) vs \(w ?? .nan)")
                compared += w == nil ? 0 : 1
            }
        }
        // 14 modules x (3 + 6 + 7 quantities) + aggregates 2 + 6 + 7.
        #expect(compared == 14 * 16 + 15)
        // The third checkpoint has rank 8 and rsLoRA, the others rank 4.
        #expect(series.map { $0.modules[0].rank } == [4, 4, 8])
    }

    /// The adapter-level functions agree with the series and the reference.
    @Test func measureAndInnerProductOfTwoRanks() throws {
        let a1 = try LoRAAdapter(directory: Self.folders[1]), a2 = try LoRAAdapter(directory: Self.folders[2])
        #expect(a2.updateScale == 16 / 8.0.squareRoot() && a1.updateScale == 2)
        let want = try Self.expected()[2]["modules"]!
        for key in a2.keys {
            let name = "\(key.layer).\(key.module.rawValue)"
            let m1 = try a1.updateMeasure(key), m2 = try a2.updateMeasure(key)
            #expect(Self.close(m2.norm, want[name]!["norm"]!.doubleValue) && Self.close(m2.sigmaMax, want[name]!["sigma_max"]!.doubleValue))
            let inner = try a2.updateInnerProduct(with: a1, at: key)
            #expect(Self.close(inner / (m1.norm * m2.norm), want[name]!["cosine"]!.doubleValue))
            // Symmetric, though the ranks (8 and 4) differ.
            let back = try a1.updateInnerProduct(with: a2, at: key)
            #expect(abs(back - inner) <= 1e-12 * abs(inner))
        }
    }

    @Test func heatMapIsLayersByModules() throws {
        let last = try #require(try AdapterDynamics.series(directories: Self.folders).last)
        let map = last.heatMap(.cosine)
        #expect(map.layers == [0, 1] && map.modules == LoRAModule.allCases && map.quantity == .cosine)
        for (i, l) in map.layers.enumerated() {
            for (j, m) in map.modules.enumerated() {
                #expect(map.values[i][j] == last.module(LoRAKey(layer: l, module: m))?.cosine && map.values[i][j] != nil)
            }
        }
        #expect(AdapterSignal.allCases.map(\.rawValue) == ["adapter_norm", "adapter_sigma_max", "adapter_cosine",
                                                           "adapter_increment_norm", "adapter_increment_cosine", "adapter_sigma_growth"])
        #expect(last.value(.cosine) == last.cosine && last.value(.norm) == last.norm)
    }

    // MARK: Small float64 algebra

    /// `Q diag(d) Q^T` for a Q made of Givens rotations.
    static func rotated(_ d: [Double]) -> [Double] {
        let n = d.count
        var q = [Double](repeating: 0, count: n * n)
        for i in 0..<n { q[i * n + i] = 1 }
        var rng = SplitMix64(seed: 5, stream: 1)
        for p in 0..<n { for r in (p + 1)..<n {
            let angle = rng.uniform() * 6.28, c = cos(angle), s = sin(angle)
            for i in 0..<n { let x = q[i * n + p], y = q[i * n + r]; q[i * n + p] = c * x - s * y; q[i * n + r] = s * x + c * y }
        } }
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { m[i * n + j] += q[i * n + k] * d[k] * q[j * n + k] } } }
        return m
    }

    @Test func jacobiEigenvaluesAndPivotedCholesky() {
        let d = [7.5, 3, 1e-3, 0, 0, 2]
        let a = Self.rotated(d)
        let e = SmallSymmetric.eigenvalues(a, n: 6)
        for (x, y) in zip(e, d.sorted(by: >)) { #expect(abs(x - y) <= 1e-13 * 7.5, "\(e)") }
        // Rank 4 of 6: four pivots, and L L^T reproduces the matrix.
        let (l, k) = SmallSymmetric.pivotedCholesky(a, n: 6)
        #expect(k == 4)
        for i in 0..<6 { for j in 0..<6 {
            let v = (0..<k).reduce(0.0) { $0 + l[i * k + $1] * l[j * k + $1] }
            #expect(abs(v - a[i * 6 + j]) <= 1e-13 * 7.5)
        } }
        // lambda_max(G H) with H singular: G = I gives lambda_max(H); a zero matrix gives 0.
        var identity = [Double](repeating: 0, count: 36)
        for i in 0..<6 { identity[i * 6 + i] = 1 }
        #expect(abs(SmallSymmetric.largestEigenvalueOfProduct(identity, a, n: 6) - 7.5) <= 1e-13 * 7.5)
        #expect(SmallSymmetric.largestEigenvalueOfProduct(a, [Double](repeating: 0, count: 36), n: 6) == 0)
    }

    /// The Gram products summed over slices of the long dimensions (as for a 7B projection,
    /// whose factors are widened a slice at a time) equal the explicit `sum(dW_0 .* dW_j)`.
    @Test func slicedProductsMatchExplicitUpdates() {
        let shapes: [LoRAModule: (Int, Int)] = [.q: (37, 29)]
        let key = LoRAKey(layer: 0, module: .q)
        let factors = [(3, 1), (5, 2), (2, 3)].map { r, seed in
            let a = Self.adapter(rank: r, shapes: shapes, seed: UInt64(seed), alpha: Double(r + 1))
            return (pair: a.pairs[key]!, scale: a.updateScale)
        }
        // dW_j = s_j B_j A_j formed explicitly in float64.
        let updates = factors.map { f in
            (0..<(37 * 29)).map { e in
                (0..<f.pair.rank).reduce(0.0) { $0 + Double(f.pair.b.pointer[e / 29 * f.pair.rank + $1]) * Double(f.pair.a.pointer[$1 * 29 + e % 29]) } * f.scale
            }
        }
        let explicit = updates.map { u in zip(updates[0], u).reduce(0.0) { $0 + $1.0 * $1.1 } }
        var workspace = GramWorkspace()  // reused, as the tracker reuses it across modules
        for slice in [1000, 1, 4, 10] {
            let p = UpdateProducts(factors, workspace: &workspace, slice: slice)
            #expect(p.inner.count == 3)
            for (got, want) in zip(p.inner, explicit) { #expect(abs(got - want) <= 1e-12 * abs(explicit[0]), "slice \(slice): \(got) vs \(want)") }
        }
    }

    // MARK: Edge cases and errors

    /// An adapter over `shapes` ([out, in] per module of layer 0) with factors from `seed`;
    /// `bScale` 0 gives PEFT's initial zero B.
    static func adapter(rank: Int = 2, shapes: [LoRAModule: (Int, Int)] = [.q: (6, 5), .down: (5, 9)], seed: UInt64 = 1,
                        bScale: Float = 1, alpha: Double = 4) -> LoRAAdapter {
        var rng = SplitMix64(seed: seed, stream: 3)
        var pairs: [LoRAKey: LoRAAdapter.Pair] = [:]
        for (m, (out, inDim)) in shapes {
            let a = FloatBuffer((0..<(rank * inDim)).map { _ in Float(rng.uniform() - 0.5) }, shape: [rank, inDim])
            let b = FloatBuffer((0..<(out * rank)).map { _ in Float(rng.uniform() - 0.5) * bScale }, shape: [out, rank])
            pairs[LoRAKey(layer: 0, module: m)] = LoRAAdapter.Pair(a: a, b: b)
        }
        return LoRAAdapter(config: LoRAConfig(rank: rank, alpha: alpha, targets: Array(shapes.keys).sorted()), pairs: pairs)
    }

    @Test func aZeroUpdateHasNoDirection() throws {
        let series = try AdapterDynamics.series([Self.adapter(bScale: 0), Self.adapter(seed: 2), Self.adapter(seed: 3)])
        #expect(series[0].norm == 0 && series[0].sigmaMax == 0 && series[0].modules.allSatisfy { $0.stableRank == nil })
        #expect(series[1].cosine == nil && series[1].sigmaGrowth == nil && series[1].meanCosine == nil)
        // From a zero update, the increment is the update itself.
        #expect(abs(series[1].incrementNorm! - series[1].norm) <= 1e-14 * series[1].norm)
        #expect(series[2].incrementCosine != nil && series[2].cosine != nil)
        for m in series[1].modules { #expect(m.stableRank! >= 1 && m.stableRank! <= 2 + 1e-12) }
    }

    @Test func aCheckpointThatDidNotMoveHasAZeroIncrement() throws {
        let a = Self.adapter(seed: 4), b = Self.adapter(seed: 5)
        let series = try AdapterDynamics.series([b, a, a])
        #expect(series[2].incrementNorm == 0 && series[2].incrementCosine == nil)
        #expect(abs(series[2].cosine! - 1) <= 1e-14 && series[2].sigmaGrowth == 1)
        #expect(series[2].modules.allSatisfy { $0.incrementNorm == 0 && $0.incrementCosine == nil })
    }

    @Test func checkpointsThatDoNotCompareNameTheModule() throws {
        var tracker = AdapterDynamicsTracker()
        _ = try tracker.append(Self.adapter(), label: "step-10")
        // A module more, a module less.
        let more = Self.adapter(shapes: [.q: (6, 5), .down: (5, 9), .v: (3, 5)])
        #expect(throws: AdapterDynamicsError.moduleSetChanged(checkpoint: "step-20", other: "step-10", module: LoRAKey(layer: 0, module: .v).peftPrefix, inCheckpoint: true)) {
            try tracker.append(more, label: "step-20")
        }
        #expect(throws: AdapterDynamicsError.moduleSetChanged(checkpoint: "step-20", other: "step-10", module: LoRAKey(layer: 0, module: .down).peftPrefix, inCheckpoint: false)) {
            try tracker.append(Self.adapter(shapes: [.q: (6, 5)]), label: "step-20")
        }
        // Another weight shape.
        #expect(throws: AdapterDynamicsError.shapeChanged(checkpoint: "step-20", other: "step-10", module: LoRAKey(layer: 0, module: .down).peftPrefix, shape: [5, 8], otherShape: [5, 9])) {
            try tracker.append(Self.adapter(shapes: [.q: (6, 5), .down: (5, 8)]), label: "step-20")
        }
        // Factors whose ranks disagree within the pair.
        let bad = Self.adapter()
        let key = LoRAKey(layer: 0, module: .q)
        var pairs = bad.pairs
        pairs[key] = LoRAAdapter.Pair(a: FloatBuffer(shape: [3, 5]), b: bad.pairs[key]!.b)
        #expect(throws: AdapterDynamicsError.factorsDoNotMultiply(checkpoint: "step-20", module: key.peftPrefix, a: [3, 5], b: [6, 2])) {
            try tracker.append(LoRAAdapter(config: bad.config, pairs: pairs), label: "step-20")
        }
        // NaN in a factor.
        let nan = Self.adapter(seed: 9)
        let b = nan.pairs[key]!.b.pointer
        b[3] = .nan
        #expect(throws: AdapterDynamicsError.nonFinite(checkpoint: "step-20", module: key.peftPrefix)) {
            try tracker.append(nan, label: "step-20")
        }
        #expect(throws: AdapterDynamicsError.noModules(checkpoint: "step-20")) {
            try tracker.append(LoRAAdapter(config: bad.config, pairs: [:]), label: "step-20")
        }
        // The failures left the tracker as it was: the next good checkpoint is the second.
        #expect(tracker.count == 1)
        let second = try tracker.append(Self.adapter(rank: 3, seed: 7), label: "step-20")
        #expect(second.index == 1 && second.cosine != nil && second.modules.allSatisfy { $0.rank == 3 })
        // The messages name the checkpoints and the module.
        let e = AdapterDynamicsError.moduleSetChanged(checkpoint: "step-20", other: "step-10", module: key.peftPrefix, inCheckpoint: false)
        #expect(e.description.hasPrefix("step-10 adapts base_model.model.model.layers.0.self_attn.q_proj and step-20 does not"))
        #expect(throws: AdapterDynamicsError.moduleMissing(checkpoint: "the adapter", module: LoRAKey(layer: 1, module: .q).peftPrefix)) {
            try Self.adapter().updateMeasure(LoRAKey(layer: 1, module: .q))
        }
    }

    @Test func aFolderThatDoesNotReadThrowsItsLoRAError() throws {
        let missing = Fixtures.url("adapter_dynamics/no-such-checkpoint")
        #expect(throws: LoRAError.missingFile(path: missing.appendingPathComponent("adapter_config.json").path)) {
            try AdapterDynamics.series(directories: [Self.folders[0], missing])
        }
    }
}
