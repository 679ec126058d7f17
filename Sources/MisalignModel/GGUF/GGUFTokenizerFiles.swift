import Foundation
import MisalignIO

/// Hugging Face `tokenizer.json` and `tokenizer_config.json` from a GGUF file's tokenizer
/// metadata (`tokenizer.ggml.*`), in the shape the original models ship them.
///
/// Byte-level BPE (`tokenizer.ggml.model` `gpt2`) with the pre-tokenizers of Qwen2
/// (`tokenizer.ggml.pre` `qwen2`) and Llama 3 (`llama-bpe`): tokens of type NORMAL (1) form the
/// BPE vocabulary, CONTROL (3) tokens become special added tokens and USER_DEFINED (4) plain
/// added tokens, UNUSED (5) padding rows (`[PAD151665]`) are left out, as they are absent from
/// the originals. Other tokenizer models (SentencePiece `llama`, used by Gemma) and
/// pre-tokenizers are refused with `GGUFError.unsupportedTokenizer`.
public struct GGUFTokenizerFiles: Sendable {
    /// `tokenizer.json`.
    public let tokenizer: JSONObject
    /// `tokenizer_config.json`.
    public let config: JSONObject

    /// Pre-tokenizer names (`tokenizer.ggml.pre`) and the split regex of each.
    static let qwen2Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let llama3Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let supportedPreTokenizers = ["qwen2", "deepseek-r1-qwen", "llama-bpe", "llama3", "llama-v3", "smaug-bpe"]

    /// Converts the tokenizer of `f`; `contextLength` becomes `model_max_length`.
    public init(_ f: GGUFFile, contextLength: Int?) throws {
        guard let model = try f.string("tokenizer.ggml.model") else {
            throw GGUFError.unsupportedTokenizer(file: f.path, field: "tokenizer.ggml.model", detail: "is missing: the file carries no tokenizer; copy tokenizer.json and tokenizer_config.json from the original model")
        }
        guard model == "gpt2" else {
            throw GGUFError.unsupportedTokenizer(file: f.path, field: "tokenizer.ggml.model", detail: "\"\(model)\" is not converted (only byte-level BPE, \"gpt2\", as Qwen2 and Llama 3 use); copy tokenizer.json and tokenizer_config.json from the original model")
        }
        let pre = try f.string("tokenizer.ggml.pre") ?? "(missing)"
        guard Self.supportedPreTokenizers.contains(pre) else {
            throw GGUFError.unsupportedTokenizer(file: f.path, field: "tokenizer.ggml.pre", detail: "pre-tokenizer \"\(pre)\" is not converted (supported: \(Self.supportedPreTokenizers.joined(separator: ", "))); copy tokenizer.json and tokenizer_config.json from the original model")
        }
        let qwen = pre == "qwen2" || pre == "deepseek-r1-qwen"
        guard let tokens = try f.strings("tokenizer.ggml.tokens") else { throw GGUFError.missingKey(file: f.path, key: "tokenizer.ggml.tokens") }
        guard let merges = try f.strings("tokenizer.ggml.merges") else { throw GGUFError.missingKey(file: f.path, key: "tokenizer.ggml.merges") }
        let types = try f.ints("tokenizer.ggml.token_type") ?? Array(repeating: 1, count: tokens.count)
        guard types.count == tokens.count else {
            throw GGUFError.invalidField(file: f.path, field: "tokenizer.ggml.token_type", detail: "has \(types.count) entries for \(tokens.count) tokens")
        }
        func name(_ key: String) throws -> String? {
            guard let id = try f.int(key) else { return nil }
            guard tokens.indices.contains(id) else {
                throw GGUFError.invalidField(file: f.path, field: key, detail: "is \(id), outside the \(tokens.count) tokens")
            }
            return tokens[id]
        }
        let bos = try name("tokenizer.ggml.bos_token_id"), eos = try name("tokenizer.ggml.eos_token_id")
        let pad = try name("tokenizer.ggml.padding_token_id")
        let addBOS = try f.bool("tokenizer.ggml.add_bos_token") ?? !qwen

        var vocab: [(String, JSONValue)] = [], added: [JSONValue] = [], decoder: [(String, JSONValue)] = []
        var seen = Set<String>()
        for (id, (token, type)) in zip(tokens, types).enumerated() {
            guard seen.insert(token).inserted else {
                throw GGUFError.unsupportedTokenizer(file: f.path, field: "tokenizer.ggml.tokens", detail: "holds \"\(token)\" twice (ids \(tokens.firstIndex(of: token)!) and \(id)), which a tokenizer.json vocabulary cannot; copy tokenizer.json and tokenizer_config.json from the original model")
            }
            switch type {
            case 3, 4:
                let special = type == 3
                let entry: [(String, JSONValue)] = [("content", .string(token)), ("lstrip", .bool(false)), ("normalized", .bool(false)),
                                                    ("rstrip", .bool(false)), ("single_word", .bool(false)), ("special", .bool(special))]
                added.append(.object(JSONObject([("id", .int(Int64(id))), ("content", .string(token)), ("single_word", .bool(false)),
                                                  ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
                                                  ("special", .bool(special))])))
                decoder.append((String(id), .object(JSONObject(entry))))
            case 5: continue
            default: vocab.append((token, .int(Int64(id))))
            }
        }
        let byteLevel = { (prefix: Bool, trim: Bool, regex: Bool) -> JSONValue in
            .object(JSONObject([("type", .string("ByteLevel")), ("add_prefix_space", .bool(prefix)), ("trim_offsets", .bool(trim)), ("use_regex", .bool(regex))]))
        }
        let split = JSONValue.object(JSONObject([("type", .string("Split")), ("pattern", .object(JSONObject([("Regex", .string(qwen ? Self.qwen2Split : Self.llama3Split))]))),
                                                 ("behavior", .string("Isolated")), ("invert", .bool(false))]))
        let preTokenizer = JSONValue.object(JSONObject([("type", .string("Sequence")), ("pretokenizers", .array([split, byteLevel(false, !qwen, false)]))]))
        var post: JSONValue = qwen ? byteLevel(false, false, false) : byteLevel(true, false, true)
        if addBOS, let bos, let bosID = try f.int("tokenizer.ggml.bos_token_id") {
            let special = { (type: Int) -> JSONValue in .object(JSONObject([("SpecialToken", .object(JSONObject([("id", .string(bos)), ("type_id", .int(Int64(type)))])))])) }
            let seq = { (id: String, type: Int) -> JSONValue in .object(JSONObject([("Sequence", .object(JSONObject([("id", .string(id)), ("type_id", .int(Int64(type)))])))])) }
            let template = JSONValue.object(JSONObject([
                ("type", .string("TemplateProcessing")), ("single", .array([special(0), seq("A", 0)])),
                ("pair", .array([special(0), seq("A", 0), special(1), seq("B", 1)])),
                ("special_tokens", .object(JSONObject([(bos, .object(JSONObject([("id", .string(bos)), ("ids", .array([.int(Int64(bosID))])), ("tokens", .array([.string(bos)]))])))]))),
            ]))
            post = .object(JSONObject([("type", .string("Sequence")), ("processors", .array([post, template]))]))
        }
        let bpe = JSONObject([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .string("")),
            ("end_of_word_suffix", .string("")), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
            ("ignore_merges", .bool(!qwen)), ("vocab", .object(JSONObject(vocab))), ("merges", .array(merges.map { .string($0) })),
        ])
        tokenizer = JSONObject([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", qwen ? .object(JSONObject([("type", .string("NFC"))])) : .null),
            ("pre_tokenizer", preTokenizer), ("post_processor", post),
            ("decoder", qwen ? byteLevel(false, false, false) : byteLevel(true, true, true)), ("model", .object(bpe)),
        ])
        let optional = { (s: String?) -> JSONValue in s.map { .string($0) } ?? .null }
        var cfg: [(String, JSONValue)] = [("add_bos_token", .bool(addBOS)), ("add_prefix_space", .bool(false)),
                                          ("added_tokens_decoder", .object(JSONObject(decoder))), ("bos_token", optional(qwen ? nil : bos))]
        if let template = try f.string("tokenizer.chat_template") { cfg.append(("chat_template", .string(template))) }
        cfg += [("clean_up_tokenization_spaces", .bool(!qwen)), ("eos_token", optional(eos)), ("errors", .string("replace")),
                ("model_max_length", .int(Int64(contextLength ?? 32768))), ("pad_token", optional(pad)),
                ("split_special_tokens", .bool(false)), ("tokenizer_class", .string(qwen ? "Qwen2Tokenizer" : "PreTrainedTokenizerFast")),
                ("unk_token", .null)]
        config = JSONObject(cfg)
    }
}
