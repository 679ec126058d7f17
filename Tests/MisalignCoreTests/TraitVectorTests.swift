import Testing
import Foundation
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

/// Trait vectors built from hidden states, their files, and projections, against the Python
/// reference (Tests/Fixtures/activations/make_reference.py: persona_vectors' method on fixed
/// token sequences with transformers in f32).
@Suite struct TraitVectorTests {
    static let reference = try! SafeTensorsFile(url: Fixtures.url("activations/reference.safetensors"))
    static let json = try! JSONValue.parse(Data(contentsOf: Fixtures.url("activations/reference.json")))
    static let model = try! Qwen2Model(directory: Fixtures.url("qwen2-small"))
    static var all: [Int] { HiddenStateRequest.allLayers(model.config) }
    var H: Int { Self.model.config.hiddenSize }

    struct Sample { let ids: [Int32]; let promptLength: Int; let side: TraitVectorBuilder.Side; let responseProj: [Double]; let promptLastProj: [Double] }

    static let samples: [Sample] = Self.json["samples"]!.arrayValue!.map { s in
        Sample(ids: s["ids"]!.arrayValue!.map { Int32($0.intValue!) }, promptLength: s["prompt_len"]!.intValue!,
               side: s["side"]!.stringValue! == "pos" ? .positive : .negative,
               responseProj: s["response_avg_proj"]!.arrayValue!.map { $0.doubleValue! },
               promptLastProj: s["prompt_last_proj"]!.arrayValue!.map { $0.doubleValue! })
    }

    func ref(_ name: String) throws -> [Float] { try Self.reference.tensor(named: name).floats() }

    /// One pass over a sample's prompt + response: its response mean, prompt-last and rows captures.
    func capture(_ s: Sample) throws -> (mean: HiddenStates, last: HiddenStates, rows: HiddenStates) {
        let cache = KVCache(config: Self.model.config)
        let q = cache.addSequence(capacity: s.ids.count)
        let caps = try Self.model.forwardCapturing([ForwardInput(sequence: q, tokens: s.ids, logits: .none, hiddenStates: [
            .responseMean(layers: Self.all, promptLength: s.promptLength), .promptLast(layers: Self.all, promptLength: s.promptLength),
            .rows(layers: Self.all),
        ])], cache: cache).hiddenStates[0]
        return (caps[0], caps[1], caps[2])
    }

    func built() throws -> TraitVector {
        var b = TraitVectorBuilder(config: Self.model.config)
        for s in Self.samples { b.add(try capture(s).mean, side: s.side) }
        return try b.build(trait: "evil", model: "qwen2-small test fixture", layer: 2, extraCounts: ["questions": 3],
                           settings: #"{"threshold":50}"#)
    }

    @Test func sampleMeansMatchThePythonReference() throws {
        for (j, s) in Self.samples.enumerated() {
            let c = try capture(s)
            #expect(c.mean.count == s.ids.count - s.promptLength && c.last.count == 1)
            let ra = try ref("sample\(j).response_avg"), pl = try ref("sample\(j).prompt_last")
            for l in Self.all {
                expectCloseToScale(try #require(c.mean.state(layer: l)), Array(ra[(l * H)..<((l + 1) * H)]), "sample \(j) response mean \(l)")
                expectCloseToScale(try #require(c.last.state(layer: l)), Array(pl[(l * H)..<((l + 1) * H)]), "sample \(j) prompt last \(l)")
            }
        }
    }

    @Test func builtVectorMatchesThePythonReference() throws {
        let v = try built()
        #expect(v.values.shape == [Self.all.count, H])
        #expect(v.counts == ["positive": 3, "negative": 3, "questions": 3])
        let want = try ref("vector")
        for l in Self.all {
            expectCloseToScale(Array(v.row(l)), Array(want[(l * H)..<((l + 1) * H)]), "vector row \(l)")
        }
    }

    /// (h . v) / |v| of the reference's own f32 states onto its vector, in f64, is the
    /// reference's f64 projection to rounding: the formula, apart from any hidden-state error.
    @Test func projectionFormulaMatchesOnTheReferenceStates() throws {
        let v = try TraitVector.load(from: Fixtures.url("activations/evil_response_avg_diff.safetensors"))
        for (j, s) in Self.samples.enumerated() {
            let ra = FloatBuffer(try ref("sample\(j).response_avg"), shape: [Self.all.count, H])
            let pl = FloatBuffer(try ref("sample\(j).prompt_last"), shape: [Self.all.count, H])
            for l in Self.all {
                let d = try v.direction(layer: l)
                let got = [d.project(ra.pointer + l * H), d.project(pl.pointer + l * H)]
                for (g, w) in zip(got, [s.responseProj[l], s.promptLastProj[l]]) {
                    #expect(abs(g - w) <= 1e-9 * max(abs(w), 1e-3), "sample \(j) layer \(l): \(g) vs \(w)")
                }
            }
            // The batch form gives the same numbers row by row.
            #expect(try v.direction(layer: 1).project(rows: ra.view) == (0..<Self.all.count).map { try! v.direction(layer: 1).project(ra.pointer + $0 * H) })
        }
    }

    /// Projections of the model's own captures onto the Swift-built and the converted Python
    /// vector match the reference, per layer relative to the largest projection at that layer;
    /// the mean-capture and rows-capture helpers agree.
    @Test func projectionsOfCapturesMatchThePythonReference() throws {
        let converted = try TraitVector.load(from: Fixtures.url("activations/evil_response_avg_diff.safetensors"), fitting: Self.model.config)
        let ours = try built()
        let caps = try Self.samples.map { try capture($0) }
        for l in Self.all {
            let scale = Self.samples.flatMap { [abs($0.responseProj[l]), abs($0.promptLastProj[l])] }.max()!
            for vector in [converted, ours] {
                for (j, s) in Self.samples.enumerated() {
                    let c = caps[j]
                    let response = try #require(try vector.projection(of: c.mean, layer: l))
                    let last = try #require(try vector.projection(of: c.last, layer: l))
                    #expect(abs(response - s.responseProj[l]) <= 1e-4 * scale, "sample \(j) layer \(l) response: \(response) vs \(s.responseProj[l])")
                    #expect(abs(last - s.promptLastProj[l]) <= 1e-4 * scale, "sample \(j) layer \(l) prompt last: \(last) vs \(s.promptLastProj[l])")
                    let fromRows = try #require(try vector.responseMeanProjection(of: c.rows, promptLength: s.promptLength, layer: l))
                    let lastFromRows = try #require(try vector.promptLastProjection(of: c.rows, promptLength: s.promptLength, layer: l))
                    #expect(abs(fromRows - response) <= 1e-6 * scale && abs(lastFromRows - last) <= 1e-9 * scale, "sample \(j) layer \(l) helpers")
                }
            }
        }
        // The chosen layer is the default; a rows capture without response rows gives nil.
        #expect(try ours.projection(of: caps[0].mean) == ours.projection(of: caps[0].mean, layer: 2))
        #expect(try ours.responseMeanProjection(of: caps[0].rows, promptLength: Self.samples[0].ids.count) == nil)
    }

    @Test func fileRoundTripKeepsValuesAndMetadata() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let v = try built()
        let url = dir.appendingPathComponent("evil.safetensors")
        try v.write(to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(file.tensorInfos.map(\.name) == ["vector"] && file.tensorInfos[0].dtype == .f32 && file.tensorInfos[0].shape == [3, H])
        #expect(file.metadata["format"] == TraitVector.formatName && file.metadata["layer"] == "2")
        let back = try TraitVector.load(from: url, fitting: Self.model.config)
        #expect(back.values.toArray() == v.values.toArray())
        #expect(back.trait == "evil" && back.model == "qwen2-small test fixture" && back.layer == 2)
        #expect(back.counts == v.counts && back.settings == #"{"threshold":50}"# && back.source == url.path)
    }

    /// The Python reference's `.pt`, converted with the documented snippet (one tensor named by
    /// the user, no metadata), loads with the file's stem as its trait.
    @Test func convertedPythonFileLoads() throws {
        let url = Fixtures.url("activations/evil_response_avg_diff.safetensors")
        let v = try TraitVector.load(from: url, fitting: Self.model.config)
        #expect(v.trait == "evil_response_avg_diff" && v.tensorNameInFile == "evil")
        #expect(v.layer == nil && v.model == nil && v.counts.isEmpty && v.settings == "{}")
        #expect(v.values.toArray() == (try ref("vector")))
        #expect(throws: TraitVectorError.invalidMetadata(file: url.path, field: "layer", detail: "is not set; name the layer to project at")) {
            _ = try v.direction()
        }
    }

    // MARK: - Errors

    /// Writes a safetensors file of the given tensors (f32 zeros-and-ones unless bytes given).
    func file(_ dir: URL, _ name: String, _ tensors: [(String, DType, [Int])], metadata: [String: String] = [:], fill: Float = 0.5) throws -> URL {
        var w = SafeTensorsWriter(metadata: metadata)
        for (n, d, s) in tensors {
            let count = s.reduce(1, *)
            if d == .f32 { w.add(n, floats: [Float](repeating: fill, count: count), shape: s) } else { w.add(n, dtype: d, shape: s, bytes: Data(count: count * d.size)) }
        }
        let url = dir.appendingPathComponent(name)
        try w.write(to: url)
        return url
    }

    @Test func badFilesGiveTypedErrorsNamingFileAndField() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = Self.model.config
        func expectError(_ url: URL, _ want: TraitVectorError, _ words: [String]) {
            do {
                _ = try TraitVector.load(from: url, fitting: cfg)
                Issue.record("\(url.lastPathComponent) loaded")
            } catch let e as TraitVectorError {
                #expect(e == want)
                let m = e.localizedDescription
                #expect(m.hasPrefix(url.path) && words.allSatisfy { m.contains($0) }, "\(m)")
            } catch { Issue.record("\(url.lastPathComponent): \(error)") }
        }
        var u = try file(dir, "rank3.safetensors", [("v", .f32, [3, H, 1])])
        expectError(u, .wrongShape(file: u.path, tensor: "v", shape: [3, H, 1]), ["\"v\"", "[layers + 1, hidden]"])
        u = try file(dir, "flat.safetensors", [("vector", .f32, [3 * H])])
        expectError(u, .wrongShape(file: u.path, tensor: "vector", shape: [3 * H]), ["[192]"])
        u = try file(dir, "hidden.safetensors", [("evil", .f32, [3, 32])])
        expectError(u, .hiddenSizeMismatch(file: u.path, tensor: "evil", found: 32, model: H), ["hidden size 32", "hidden_size is 64"])
        u = try file(dir, "layers.safetensors", [("evil", .f32, [5, H])])
        expectError(u, .layerCountMismatch(file: u.path, tensor: "evil", found: 5, model: 3), ["5 rows", "num_hidden_layers + 1"])
        u = try file(dir, "two.safetensors", [("a", .f32, [3, H]), ("b", .f32, [3, H])])
        expectError(u, .missingTensor(file: u.path, found: ["a", "b"]), ["\"vector\"", "\"a\", \"b\""])
        u = try file(dir, "none.safetensors", [])
        expectError(u, .missingTensor(file: u.path, found: []), ["found: none"])
        u = try file(dir, "ints.safetensors", [("vector", .i64, [3, H])])
        expectError(u, .wrongDType(file: u.path, tensor: "vector", dtype: .i64), ["I64"])
        u = try file(dir, "nan.safetensors", [("vector", .f32, [3, H])], fill: .nan)
        expectError(u, .notFinite(file: u.path, layer: 0), ["row 0"])
        for (field, value, words) in [("layer", "x", "not an integer"), ("layer", "7", "outside 0..<3"), ("counts", "[1]", "not a JSON object"),
                                      ("counts", #"{"positive":"3"}"#, "not an integer"), ("settings", "{", "not a JSON object"),
                                      ("format", "other", "this version reads")] {
            let url = try file(dir, "meta-\(field).safetensors", [("vector", .f32, [3, H])], metadata: [field: value])
            do {
                _ = try TraitVector.load(from: url, fitting: cfg)
                Issue.record("\(field) \(value) accepted")
            } catch let e as TraitVectorError {
                guard case .invalidMetadata(let f, let fd, _) = e else { Issue.record("\(e)"); continue }
                #expect(f == url.path && fd == field && e.description.contains(words), "\(e)")
            }
        }
        // Half-precision vectors load, widened to f32.
        let half = try TraitVector.load(from: try file(dir, "bf16.safetensors", [("evil", .bf16, [3, H])]), fitting: cfg)
        #expect(half.values.shape == [3, H] && half.values.toArray().allSatisfy { $0 == 0 })
        // Not a safetensors file at all: the reader's own error.
        let junk = dir.appendingPathComponent("junk.safetensors")
        try Data([1, 2, 3]).write(to: junk)
        #expect(throws: SafeTensorsError.self) { _ = try TraitVector.load(from: junk) }
    }

    @Test func projectionAndBuildErrors() throws {
        let zero = try TraitVector(trait: "zero", values: FloatBuffer(shape: [3, H], zeroed: true))
        #expect(throws: TraitVectorError.zeroDirection(file: "trait vector zero", layer: 1)) { _ = try zero.direction(layer: 1) }
        #expect(throws: TraitVectorError.layerOutOfRange(file: "trait vector zero", layer: 3, rows: 3)) { _ = try zero.direction(layer: 3) }
        #expect(throws: TraitVectorError.invalidMetadata(file: "trait vector x", field: "layer", detail: "3 is outside 0..<3, the vector's rows")) {
            _ = try TraitVector(trait: "x", values: FloatBuffer(shape: [3, H]), layer: 3)
        }
        var b = TraitVectorBuilder(config: Self.model.config)
        b.add(try capture(Self.samples[0]).mean, side: .positive)
        #expect(throws: TraitVectorError.noAnswers(trait: "evil", side: "negative")) { _ = try b.build(trait: "evil") }
        // A vector of another hidden size cannot project this model's states.
        let narrow = try TraitVector(trait: "narrow", values: FloatBuffer([Float](repeating: 1, count: 3 * 32), shape: [3, 32]))
        #expect(throws: TraitVectorError.hiddenSizeMismatch(file: "trait vector narrow", tensor: "vector", found: 32, model: H)) {
            _ = try narrow.projection(of: try capture(Self.samples[0]).mean, layer: 1)
        }
    }
}
