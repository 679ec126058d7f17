import Testing
import Foundation
import CMisalignKernels
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

/// The opt-in bf16 compute precision (`ComputePrecision.bf16`): the vdpbf16ps product kernel
/// against a float64 product of the bf16-rounded inputs, the rounding itself against the
/// torch-verified conversions, and the whole model against PyTorch (Tests/Fixtures/model/
/// make_reference.py): at least as close to float32 as PyTorch's own bfloat16 run.
@Suite struct BF16ComputeTests {
    /// float64 reference: y[r, o] = sum_k bf16(x[r, k]) W[o, k] (+ y0), with the worst error
    /// relative to sum_k |bf16(x) W| (the scale f32 summation error grows with).
    /// One of the two bf16 dot kernels' C entry points (their signatures are the same).
    typealias DotKernel = @convention(c) (UnsafeMutablePointer<Float>?, Int, UnsafePointer<Float>?, Int, UnsafePointer<UInt16>?,
                                          Int, Int, Int, Int32, Int) -> Int32

    /// Runs `kernel` on random y (row stride out + 5; x's is inDim + 3) and expects it to run
    /// and to be within 1e-6 of the float64 product of the rounded inputs. Returns y, and the
    /// y it started from.
    func runChecked(_ kernel: DotKernel, x: [Float], w: [Float], m: Int, inDim: Int, out: Int, accumulate: Bool, threads: Int,
                    rng: inout SplitMix64) -> (y: [Float], y0: [Float]) {
        let wb = Precision.f32ToBF16(w)
        let ldx = inDim + 3, ldy = out + 5
        var y = rng.floats(m * ldy)
        let y0 = y
        let ok = y.withUnsafeMutableBufferPointer { yp in
            wb.withUnsafeBufferPointer { kernel(yp.baseAddress, ldy, x, ldx, $0.baseAddress, m, inDim, out, accumulate ? 1 : 0, threads) }
        }
        #expect(ok == 1)
        let err = worstError(y: y, y0: accumulate ? y0 : nil, x: x, ldx: ldx, w: w, m: m, inDim: inDim, out: out, ldy: ldy)
        #expect(err < 1e-6, "m=\(m) in=\(inDim) out=\(out) accumulate=\(accumulate) threads=\(threads): \(err)")
        return (y, y0)
    }

    /// productError against the rounded x.
    func worstError(y: [Float], y0: [Float]?, x: [Float], ldx: Int, w: [Float], m: Int, inDim: Int, out: Int, ldy: Int) -> Double {
        let xr = Precision.bf16ToF32(Precision.f32ToBF16(x))
        return productError(y: y, y0: y0, x: xr, ldx: ldx, w: w, m: m, inDim: inDim, out: out, ldy: ldy)
    }

    /// Token counts around the 32-token blocks and the 256-token packing chunks, output rows
    /// around the 12-row tiles, strided x and y, accumulation, 1-3 threads.
    @Test(.enabled(if: ComputePrecision.bf16DotAvailable, "this CPU has no AVX512_BF16; the fallback is tested below"))
    func dotKernelMatchesFloat64() {
        var rng = SplitMix64(seed: 16)
        for (m, inDim, out) in [(33, 64, 13), (37, 70, 150), (261, 64, 25), (40, 1030, 12), (64, 2, 1)] {
            let w = Precision.bf16ToF32(Precision.f32ToBF16(rng.floats(out * inDim)))
            let ldy = out + 5
            let x = rng.floats(m * (inDim + 3))
            for (accumulate, threads) in [(false, 1), (true, 2), (false, 3)] {
                let (y, y0) = runChecked(misalign_matmul_bf16_dot, x: x, w: w, m: m, inDim: inDim, out: out, accumulate: accumulate,
                                         threads: threads, rng: &rng)
                for r in 0..<m { for o in out..<ldy { #expect(y[r * ldy + o] == y0[r * ldy + o], "column past out written") } }
            }
        }
    }

    /// The few-rows kernel (lanes along k): every row count that takes its own code path (1-4
    /// streamed, 5-32 in 4 x 6 down to 4 x 1 tiles), W's row count around the 4-row tiles and
    /// the 16-row shares, inner sizes around the 32-value chunks (odd ones included: the last
    /// chunk is loaded under a mask), strided x and y, accumulation, 1-3 threads; and the same
    /// bits whatever the split.
    @Test(.enabled(if: ComputePrecision.bf16DotAvailable, "this CPU has no AVX512_BF16; the fallback is tested below"))
    func rowsKernelMatchesFloat64() {
        var rng = SplitMix64(seed: 17)
        for (m, inDim, out) in [(1, 64, 13), (2, 33, 19), (3, 896, 7), (4, 95, 40), (5, 64, 21), (7, 31, 4), (9, 130, 37),
                                (20, 896, 50), (32, 97, 66), (1, 1, 3), (13, 1, 17)] {
            let w = Precision.bf16ToF32(Precision.f32ToBF16(rng.floats(out * inDim)))
            let ldy = out + 5
            let x = rng.floats(m * (inDim + 3))
            var oneThread: [Float] = []
            for (accumulate, threads) in [(false, 1), (false, 3), (true, 2), (false, 2)] {
                let (y, y0) = runChecked(misalign_matmul_bf16_dot_rows, x: x, w: w, m: m, inDim: inDim, out: out, accumulate: accumulate,
                                         threads: threads, rng: &rng)
                for r in 0..<m { for o in out..<ldy { #expect(y[r * ldy + o].bitPattern == y0[r * ldy + o].bitPattern, "column past out written") } }
                if !accumulate && threads == 1 { oneThread = y }
                if !accumulate && threads > 1 {
                    for r in 0..<m { for o in 0..<out { #expect(y[r * ldy + o] == oneThread[r * ldy + o], "\(threads) threads differ from one") } }
                }
            }
        }
    }

    /// An odd inner dimension has no whole pairs: the kernel declines and leaves y alone.
    @Test func dotKernelDeclinesOddInnerDimension() {
        var y = [Float](repeating: 7, count: 40 * 3)
        let x = [Float](repeating: 1, count: 40 * 5), w = [UInt16](repeating: 0x3F80, count: 3 * 5)
        let ok = y.withUnsafeMutableBufferPointer { misalign_matmul_bf16_dot($0.baseAddress, 3, x, 5, w, 40, 5, 3, 0, 1) }
        #expect(ok == 0)
        #expect(y.allSatisfy { $0 == 7 })
    }

    /// `misalign_round_to_bf16` gives the value of a round trip through the torch-verified
    /// bf16 conversion, bit for bit: ties, subnormals, the largest finite values, infinities.
    @Test func roundingEqualsTheConversionRoundTrip() {
        var rng = SplitMix64(seed: 3)
        var values = rng.floats(10_000).map { $0 * 1e3 }
        values += [0, -0, 1, 1.00390625, 1.01171875, 1.0078125, Float.leastNonzeroMagnitude, Float.leastNormalMagnitude,
                   -Float.leastNormalMagnitude / 3, Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude, .infinity, -.infinity]
        values += (0..<2000).map { Float(bitPattern: UInt32(truncatingIfNeeded: $0 &* 2_654_435_761)) }.filter { !$0.isNaN }
        var rounded = [Float](repeating: 0, count: values.count)
        rounded.withUnsafeMutableBufferPointer { misalign_round_to_bf16($0.baseAddress, values, values.count) }
        let want = Precision.bf16ToF32(Precision.f32ToBF16(values))
        for i in values.indices { #expect(rounded[i].bitPattern == want[i].bitPattern, "\(values[i])") }
        var nan = [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001)]
        nan.withUnsafeMutableBufferPointer { misalign_round_to_bf16($0.baseAddress, $0.baseAddress, 3) }
        #expect(nan.allSatisfy { $0.isNaN })
    }

    /// Every path of `LinearWeight.apply` with `.bf16` (the kernel with the lanes along k at 1,
    /// 4, 20 and 33 rows, the one with 32 tokens across the lanes at 100 (`dotFits`), or rounded
    /// x through the f32 kernels where the CPU lacks AVX512_BF16) equals the product of the
    /// rounded x; f32 weights ignore the setting.
    @Test func linearWeightAppliesRoundedInputsOnEveryPath() throws {
        var rng = SplitMix64(seed: 8)
        let out = 150, inDim = 96
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for dtype in [DType.bf16, .f32] {
            var writer = SafeTensorsWriter()
            writer.add("w", floats: rng.floats(out * inDim), shape: [out, inDim], dtype: dtype)
            let url = dir.appendingPathComponent("\(dtype).safetensors")
            try writer.write(to: url)
            let file = try SafeTensorsFile(url: url)
            let w = try LinearWeight(tensor: try file.tensor(named: "w"))
            let stored = try file.tensor(named: "w").floats()
            let scratch = FloatBuffer(shape: [w.scratchCount])
            for m in [1, 4, 20, 33, 100] {
                let x = rng.floats(m * inDim)
                var y = [Float](repeating: 0, count: m * out)
                y.withUnsafeMutableBufferPointer {
                    w.apply(x: x, ldx: inDim, rows: m, y: $0.baseAddress!, ldy: out, scratch: scratch.pointer, precision: .bf16)
                }
                if dtype == .bf16 {
                    let err = worstError(y: y, y0: nil, x: x, ldx: inDim, w: stored, m: m, inDim: inDim, out: out, ldy: out)
                    #expect(err < 1e-6, "bf16 m=\(m): \(err)")
                } else {
                    var plain = [Float](repeating: 0, count: m * out)
                    plain.withUnsafeMutableBufferPointer {
                        w.apply(x: x, ldx: inDim, rows: m, y: $0.baseAddress!, ldy: out, scratch: scratch.pointer)
                    }
                    #expect(y == plain, "f32 weights ignore .bf16 (m=\(m))")
                }
            }
        }
    }

    /// An odd inner size at row counts the 32-token dot kernel would take (28, 100): that kernel
    /// needs k in pairs, so 28 rows go to the kernel with the lanes along k and 100 to rounded x
    /// through the f32 kernels; both equal the product of the rounded x.
    @Test func oddInnerSizeTakesAnotherPath() throws {
        var rng = SplitMix64(seed: 9)
        let out = 40, inDim = 37
        let (file, dir) = try temporaryWeights([("w", rng.floats(out * inDim), [out, inDim])], dtype: .bf16)
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = try LinearWeight(tensor: try file.tensor(named: "w"))
        let stored = try file.tensor(named: "w").floats()
        let scratch = FloatBuffer(shape: [w.scratchCount])
        for m in [28, 100] {
            let x = rng.floats(m * inDim)
            var y = [Float](repeating: .nan, count: m * out)
            y.withUnsafeMutableBufferPointer {
                w.apply(x: x, ldx: inDim, rows: m, y: $0.baseAddress!, ldy: out, scratch: scratch.pointer, precision: .bf16)
            }
            let err = worstError(y: y, y0: nil, x: x, ldx: inDim, w: stored, m: m, inDim: inDim, out: out, ldy: out)
            #expect(err < 1e-6, "m=\(m): \(err)")
        }
    }

    /// The bf16 model with bf16 products against transformers: closer to the float32 run than
    /// PyTorch's bfloat16 run is, for prompts of 7, 13 and 45 tokens (the kernel with the lanes
    /// along k: 45 rows would fill the other one's 32-token blocks to 70%; that one is checked
    /// through `LinearWeight` at 100 rows above, and against float64 on its own).
    @Test(arguments: ["prompt0", "prompt1", "ids45"])
    func modelIsCloserToFloat32ThanPyTorchBF16(prompt: String) throws {
        let reference = try SafeTensorsFile(url: Fixtures.url("model/reference.safetensors"))
        let model = try Qwen2Model(directory: Fixtures.url("qwen2-small-bf16-sharded"))
        model.computePrecision = .bf16
        let idsName = prompt == "ids45" ? "bf16.ids45" : "\(prompt).ids"
        let tokens = try reference.tensor(named: idsName).integers().map { Int32($0) }
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: tokens.count)
        let ours = try model.forward([ForwardInput(sequence: s, tokens: tokens, logits: .all)], cache: cache)[0]!.toArray()
        let f32 = try reference.tensor(named: "bf16.\(prompt == "ids45" ? "ids45" : prompt).logits").floats()
        let torchBF16 = try reference.tensor(named: "bf16native.\(prompt == "ids45" ? "ids45" : prompt).logits").floats()
        #expect(ours.count == f32.count)
        let oursErr = zip(ours, f32).map { abs($0 - $1) }.max()!
        let torchErr = zip(torchBF16, f32).map { abs($0 - $1) }.max()!
        #expect(oursErr <= torchErr, "bf16 compute is \(oursErr) from float32; PyTorch bf16 is \(torchErr)")
        #expect(oursErr > 0, "the bf16 path was not taken")
        // And the greedy choice at every position agrees with float32 wherever float32's top two
        // logits are further apart than PyTorch bf16's own error.
        let V = model.config.vocabSize
        for t in 0..<tokens.count {
            let row = Array(f32[(t * V)..<((t + 1) * V)])
            let sorted = row.sorted(by: >)
            guard sorted[0] - sorted[1] > 2 * torchErr else { continue }
            let mine = Array(ours[(t * V)..<((t + 1) * V)])
            #expect(mine.firstIndex(of: mine.max()!) == row.firstIndex(of: sorted[0]), "position \(t)")
        }
    }
}
