import ArgumentParser
import Foundation
import MisalignCore

struct ImportGGUFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-gguf",
        abstract: "Convert a GGUF model (llama.cpp) into a Hugging Face model folder Misalign can load.",
        discussion: """
        FILE is a .gguf file of a qwen2, llama or gemma2 model with tensors stored as F32, F16, \
        BF16, Q8_0, Q4_K or Q6_K (Q4_K_M, Q6_K, Q8_0 and F16 files qualify). OUT_DIR receives \
        config.json, the weights dequantised into safetensors with Hugging Face names (sharded \
        with model.safetensors.index.json past 5 GB), and tokenizer.json plus \
        tokenizer_config.json converted from the GGUF tokenizer (Qwen2 and Llama 3 byte-level \
        BPE; for others, such as Gemma's SentencePiece, the weights are imported and a note says \
        to copy the tokenizer files from the original model). llama.cpp's q/k row permutation \
        (llama) and Gemma's +1 on norm weights are undone. Weights are stored as bf16 unless \
        --dtype says otherwise (f32 keeps every dequantised value exactly).

        The folder is written beside OUT_DIR and renamed into place at the end; an existing \
        non-empty OUT_DIR is refused unless --force. See Docs/GGUF.md.

        Examples:
          misalign import-gguf qwen2.5-0.5b-instruct-q4_k_m.gguf models/qwen2.5-0.5b-q4km
          misalign import-gguf Llama-3.2-1B-Instruct-Q6_K.gguf models/llama-1b --dtype f32
          misalign import-gguf model.gguf out --force --json
        """
    )

    @Argument(help: "The .gguf file.", completion: .file(extensions: ["gguf"]))
    var file: String

    @Argument(help: "The model folder to create.", completion: .directory)
    var outDir: String

    @Option(help: "Stored weight type: bf16, f32 or f16.")
    var dtype: String = "bf16"

    @Flag(help: "Replace OUT_DIR if it exists and is not empty.")
    var force = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard ["bf16", "f32", "f16"].contains(dtype) else {
            throw ValidationError("--dtype must be bf16, f32 or f16, not \"\(dtype)\".")
        }
    }

    func run() throws {
        let stored: DType = dtype == "f32" ? .f32 : dtype == "f16" ? .f16 : .bf16
        let options = GGUFImportOptions(dtype: stored, overwrite: force)
        let bar = ProgressBar(label: "tensors", total: 0, mode: output.progressMode)
        let result: GGUFImportResult
        do {
            result = try GGUFImporter.import(file: URL(fileURLWithPath: file), to: URL(fileURLWithPath: outDir), options: options) { p in
                bar.update(p.tensorsDone, total: p.tensorCount, detail: p.tensor)
            }
        } catch let error as GGUFError {
            bar.finish()
            if case .outputNotEmpty = error { throw CLIError("\(error) Pass --force to replace it.") }
            throw CLIError("\(error)")
        } catch {
            bar.finish()
            throw CLIError("\(error)")
        }
        bar.finish()
        if let why = result.tokenizerSkipped { output.note("note: no tokenizer written: \(why)") }
        if output.json {
            let v = JSONValue.object(JSONObject([
                ("directory", .string(result.directory.path)), ("architecture", .string(result.architecture.rawValue)),
                ("tensors", .int(Int64(result.tensorCount))), ("weight_bytes", .int(Int64(result.weightBytes))),
                ("weight_files", .array(result.weightFiles.map { .string($0) })), ("dtype", .string(dtype)),
                ("tokenizer", result.tokenizerSkipped.map { .string("skipped: " + $0) } ?? .string("written")),
            ]))
            print(v.serialized())
        } else {
            print("imported \(result.architecture.rawValue): \(result.tensorCount) tensors, \(formatBytes(result.weightBytes)) as \(dtype) in \(result.weightFiles.count) file\(result.weightFiles.count == 1 ? "" : "s") -> \(result.directory.path)")
        }
    }
}
