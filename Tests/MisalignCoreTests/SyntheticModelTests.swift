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

@Suite struct SyntheticModelTests {
    @Test(arguments: [DType.f32, .bf16])
    func writesALoadableModelFolder(dtype: DType) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = SyntheticModel.tiny
        config.tieWordEmbeddings = dtype == .f32
        try SyntheticModel.write(config, dtype: dtype, seed: 3, to: dir)
        let model = try Qwen2Model(directory: dir)
        #expect(model.config.vocabSize == 151936 && model.config.tieWordEmbeddings == (dtype == .f32))
        #expect(model.weights.layers[1].downProj.dtype == dtype)
        let weights = try ShardedSafeTensors(directory: dir)
        #expect(weights.tensorInfos.reduce(0) { $0 + $1.elementCount } == model.config.parameterCount)
        // Same seed, same bytes; the values have the intended spread.
        let q = try weights.tensor(named: "model.layers.0.self_attn.q_proj.weight").floats()
        let sd = (q.reduce(0) { $0 + Double($1 * $1) } / Double(q.count)).squareRoot()
        #expect(abs(sd - 0.02) < 0.002)
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: 8)
        let logits = try model.forward([ForwardInput(sequence: s, tokens: [151644, 872, 198, 9707])], cache: cache)[0]!
        #expect(logits.toArray().allSatisfy { $0.isFinite })
        let dir2 = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir2) }
        try SyntheticModel.write(config, dtype: dtype, seed: 3, to: dir2)
        let a = try Data(contentsOf: dir.appendingPathComponent("model.safetensors"))
        let b = try Data(contentsOf: dir2.appendingPathComponent("model.safetensors"))
        #expect(a == b)
    }
}
