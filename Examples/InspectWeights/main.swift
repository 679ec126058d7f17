// Example: open a Hugging Face model folder (sharded or not) with MisalignCore, print its
// config, and compute the RMS of one weight matrix straight from the mapped file.
//
//   swift run -c release InspectWeights Tests/Fixtures/qwen2-small-bf16-sharded
import Foundation
import MisalignCore

let args = CommandLine.arguments
guard args.count == 2 else {
    print("usage: InspectWeights MODEL_DIR")
    exit(2)
}
let dir = URL(fileURLWithPath: args[1])
do {
    let config = try Qwen2Config.load(from: dir)
    let weights = try ShardedSafeTensors(directory: dir)
    print("\(config.numHiddenLayers) layers, hidden \(config.hiddenSize), \(config.parameterCount) parameters in \(weights.shards.count) file(s)")
    let q = try weights.tensor(named: "model.layers.0.self_attn.q_proj.weight")
    let values = try q.floatBuffer() // bf16/f16 converted to f32, aligned for BLAS
    var sumSquares = 0.0
    for i in 0..<values.count { sumSquares += Double(values.pointer[i] * values.pointer[i]) }
    print("\(q.name): \(q.dtype.rawValue) \(q.shape), rms \((sumSquares / Double(values.count)).squareRoot())")
} catch {
    print("error: \(error)")
    exit(1)
}
