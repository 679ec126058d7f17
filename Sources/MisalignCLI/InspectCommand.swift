import ArgumentParser
import Foundation
import MisalignCore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a safetensors file or a model folder; summarise an adapter, checkpoint or run.",
        discussion: """
        PATH is a .safetensors file, a model.safetensors.index.json, or a Hugging Face model \
        folder (config.json plus one or several safetensors shards). Prints every tensor with \
        its dtype, shape and size, each file's __metadata__, and for a model folder the decoded \
        config. An adapter or checkpoint folder (adapter_config.json) gives rank, alpha, modules, \
        layers and parameter count; a run directory (store.sqlite) gives the store's row counts. Exits with status 1 and a message naming the file and the problem when anything \
        is corrupt.

        Examples:
          misalign inspect ~/models/Qwen2.5-0.5B-Instruct
          misalign inspect runs/study/checkpoints/medical-seed0/checkpoint-16
          misalign inspect runs/study
          misalign inspect ~/models/Qwen2.5-7B-Instruct/model.safetensors.index.json
          misalign inspect model-00001-of-00004.safetensors --json | jq '.tensors | length'
          misalign inspect run/checkpoint-16/adapter_model.safetensors
        """
    )

    @Argument(help: "A .safetensors file, an index file, or a model folder.", completion: .file())
    var path: String

    @OptionGroup var output: OutputOptions

    func run() throws {
        do {
            if let v = try Inspection.describe(URL(fileURLWithPath: path)) {
                print(output.json ? v.serialized() : Inspection.text(v))
                return
            }
        } catch { throw CLIError("\(error)") }
        let summary: WeightsSummary
        do {
            summary = try WeightsSummary.inspect(URL(fileURLWithPath: path))
        } catch {
            throw CLIError("\(error)")
        }
        print(output.json ? InspectFormatter.json(summary) : InspectFormatter.table(summary))
    }
}

enum InspectFormatter {
    static func table(_ s: WeightsSummary) -> String {
        var lines: [String] = []
        if let c = s.config {
            let rope = c.ropeScaling.map { ", llama3 rope scaling (factor \($0.factor), original context \($0.originalMaxPositionEmbeddings))" } ?? ""
            lines.append("family: \(c.family.displayName) (model_type \(c.modelType))\(c.attentionBias ? ", q/k/v biases" : ", no attention biases")\(rope)")
            if let g = c.gemma { lines.append("gemma2: " + gemmaText(g, activation: c.hiddenAct)) }
            lines.append("config: \(c.modelType), \(c.numHiddenLayers) layers, hidden \(c.hiddenSize), intermediate \(c.intermediateSize), "
                + "heads \(c.numAttentionHeads)/\(c.numKeyValueHeads) kv, head_dim \(c.headDim), vocab \(c.vocabSize), "
                + "rope_theta \(c.ropeTheta), rms_norm_eps \(c.rmsNormEps), tied embeddings \(c.tieWordEmbeddings), dtype \(c.dtype ?? "unspecified")")
            lines.append("parameters (from config): \(c.parameterCount)")
        }
        for (file, meta) in s.metadata where !meta.isEmpty {
            lines.append("metadata \(file): " + meta.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }
        let multi = s.files.count > 1
        let nameWidth = min(80, s.tensors.map(\.name.count).max() ?? 4)
        let header = "name".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  dtype    shape                size" + (multi ? "        file" : "")
        lines.append(header)
        for t in s.tensors {
            var row = t.name.padding(toLength: max(nameWidth, t.name.count), withPad: " ", startingAt: 0)
            row += "  " + t.dtype.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
            row += "  " + ("[" + t.shape.map(String.init).joined(separator: ", ") + "]").padding(toLength: 19, withPad: " ", startingAt: 0)
            row += "  " + formatBytes(t.bytes).padding(toLength: 10, withPad: " ", startingAt: 0)
            if multi { row += "  " + t.file }
            lines.append(row)
        }
        lines.append("\(s.tensors.count) tensors, \(s.totalElements) elements, \(formatBytes(s.totalBytes)) in \(s.files.count) file\(s.files.count == 1 ? "" : "s")")
        return lines.joined(separator: "\n")
    }

    /// Gemma 2's options in one line.
    static func gemmaText(_ g: Gemma2Options, activation: String) -> String {
        func cap(_ v: Double?) -> String { v.map { "\($0)" } ?? "none" }
        let sliding = g.slidingLayers.indices.filter { g.slidingLayers[$0] }
        let window = g.slidingWindow.map { "sliding window \($0) on \(sliding.count) of \(g.slidingLayers.count) layers" } ?? "no sliding window"
        return "\(activation), query_pre_attn_scalar \(g.queryPreAttnScalar), soft-caps \(cap(g.attnLogitSoftcapping)) (scores) and "
            + "\(cap(g.finalLogitSoftcapping)) (logits), \(window)"
    }

    static func json(_ s: WeightsSummary) -> String {
        var root = JSONObject()
        root["path"] = .string(s.path)
        root["files"] = .array(s.files.map { .string($0) })
        root["tensors"] = .array(s.tensors.map { t in
            .object(JSONObject([("name", .string(t.name)), ("dtype", .string(t.dtype.rawValue)),
                                ("shape", .array(t.shape.map { .int(Int64($0)) })), ("bytes", .int(Int64(t.bytes))),
                                ("file", .string(t.file))]))
        })
        root["metadata"] = .object(JSONObject(s.metadata.map { m in
            (m.file, JSONValue.object(JSONObject(m.values.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }))
        root["total_bytes"] = .int(Int64(s.totalBytes))
        if let c = s.config {
            root["config"] = .object(JSONObject([
                ("model_type", .string(c.modelType)), ("family", .string(c.family.displayName)),
                ("attention_bias", .bool(c.attentionBias)),
                ("rope_scaling", c.ropeScaling.map { r in .object(JSONObject([
                    ("rope_type", .string("llama3")), ("factor", .double(r.factor)), ("low_freq_factor", .double(r.lowFreqFactor)),
                    ("high_freq_factor", .double(r.highFreqFactor)),
                    ("original_max_position_embeddings", .int(Int64(r.originalMaxPositionEmbeddings)))])) } ?? .null),
                ("gemma2", c.gemma.map { g in .object(JSONObject([
                    ("hidden_activation", .string(c.hiddenAct)), ("query_pre_attn_scalar", .double(g.queryPreAttnScalar)),
                    ("attn_logit_softcapping", g.attnLogitSoftcapping.map { .double($0) } ?? .null),
                    ("final_logit_softcapping", g.finalLogitSoftcapping.map { .double($0) } ?? .null),
                    ("sliding_window", g.slidingWindow.map { .int(Int64($0)) } ?? .null),
                    ("sliding_layers", .array(g.slidingLayers.indices.filter { g.slidingLayers[$0] }.map { .int(Int64($0)) }))])) } ?? .null),
                ("hidden_size", .int(Int64(c.hiddenSize))), ("intermediate_size", .int(Int64(c.intermediateSize))),
                ("num_hidden_layers", .int(Int64(c.numHiddenLayers))), ("num_attention_heads", .int(Int64(c.numAttentionHeads))),
                ("num_key_value_heads", .int(Int64(c.numKeyValueHeads))), ("head_dim", .int(Int64(c.headDim))),
                ("vocab_size", .int(Int64(c.vocabSize))), ("rope_theta", .double(c.ropeTheta)),
                ("rms_norm_eps", .double(c.rmsNormEps)), ("tie_word_embeddings", .bool(c.tieWordEmbeddings)),
                ("dtype", c.dtype.map { .string($0) } ?? .null), ("parameters", .int(Int64(c.parameterCount))),
            ]))
        }
        return JSONValue.object(root).serialized()
    }
}
