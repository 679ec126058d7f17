import Foundation
import MisalignIO

/// The two tokenizer pipelines Misalign implements, told apart by tokenizer.json's components.
enum TokenizerKind: Sendable, Equatable {
    /// GPT-2 style byte-level BPE behind a hand-written split: Qwen2/Qwen2.5 (`\p{N}`) and
    /// Llama 3.x (`\p{N}{1,3}`). Optional NFC normalizer, ByteLevel decoder.
    case byteLevel(SplitPattern)
    /// SentencePiece-style BPE as Gemma 2 stores it in tokenizer.json: normalizer
    /// Replace(" " → "▁"), no pre-tokenizer (each stretch between added tokens is one word),
    /// `byte_fallback` to `<0xNN>` tokens, decoder Replace("▁" → " "), ByteFallback, Fuse.
    case sentencePiece
}

/// What the checked components of tokenizer.json amount to.
struct PipelineSpec {
    var kind: TokenizerKind
    var applyNFC: Bool
    /// Ids the post-processor's TemplateProcessing puts before and after a single sequence
    /// (Llama 3: `<|begin_of_text|>`; Gemma 2: `<bos>`), only used when special tokens are asked for.
    var prefix: [Int] = []
    var suffix: [Int] = []
}

/// The metaspace that SentencePiece writes for a space.
let metaspace = "\u{2581}"

/// Checks normalizer, pre-tokenizer, decoder and post-processor against the two pipelines, so
/// a file that needs anything else fails loudly instead of producing different ids.
/// `modelByteFallback` is the model's `byte_fallback` flag, which picks the pipeline unless the
/// decoder is ByteLevel (a byte-level file with the flag set never falls back: its byte
/// alphabet is complete, checked at load).
func checkPipeline(_ top: JSONValue, modelByteFallback: Bool, file: String) throws(TokenizerError) -> PipelineSpec {
    let byteFallback = modelByteFallback && top["decoder"]?["type"]?.stringValue != "ByteLevel"
    func unsupported(_ component: String, _ detail: String) -> TokenizerError {
        .unsupportedComponent(file: file, component: component, detail: detail)
    }
    func items(_ v: JSONValue, _ listKey: String) -> [JSONValue] {
        v["type"]?.stringValue == "Sequence" ? (v[listKey]?.arrayValue ?? []) : [v]
    }
    func patternString(_ v: JSONValue?) -> String? { v?["String"]?.stringValue }
    let family = byteFallback ? "SentencePiece BPE" : "byte-level BPE"

    // Normalizer: NFC (byte-level) or Replace(" " → "▁") (SentencePiece), or none.
    var applyNFC = false, replacesSpaces = false
    if let n = top["normalizer"], !n.isNull {
        for item in items(n, "normalizers") {
            let type = item["type"]?.stringValue ?? "(no type)"
            if type == "NFC" && !byteFallback {
                applyNFC = true
            } else if type == "Replace" && byteFallback && patternString(item["pattern"]) == " "
                        && item["content"]?.stringValue == metaspace && !replacesSpaces {
                replacesSpaces = true
            } else if type == "Prepend" {
                throw unsupported("normalizer", "type Prepend (a Llama 2 style leading \"▁\" is not implemented; Gemma 2 has none)")
            } else {
                throw unsupported("normalizer", byteFallback
                    ? "type \(type) (only Replace \" \" → \"▁\" is implemented for SentencePiece BPE)"
                    : "type \(type) (only NFC is implemented)")
            }
        }
    }
    if byteFallback && !replacesSpaces {
        throw unsupported("normalizer", "SentencePiece BPE needs Replace(\" \" → \"▁\") as its normalizer")
    }

    // Pre-tokenizer.
    var kind = TokenizerKind.sentencePiece
    if byteFallback {
        // None, or a Split on " " that the Replace normalizer has made a no-op (no spaces remain).
        if let p = top["pre_tokenizer"], !p.isNull {
            for item in items(p, "pretokenizers") {
                guard item["type"]?.stringValue == "Split", patternString(item["pattern"]) == " ",
                      item["behavior"]?.stringValue == "MergedWithPrevious", item["invert"]?.boolValue != true else {
                    throw unsupported("pre_tokenizer", "type \(item["type"]?.stringValue ?? "(no type)") for SentencePiece BPE (only none is implemented)")
                }
            }
        }
    } else {
        kind = .byteLevel(try checkByteLevelPreTokenizer(top["pre_tokenizer"], file: file))
    }

    // Decoder.
    if let d = top["decoder"], !d.isNull {
        let types = items(d, "decoders").map { $0["type"]?.stringValue ?? "(no type)" }
        if byteFallback {
            let list = items(d, "decoders")
            let ok = types == ["Replace", "ByteFallback", "Fuse"] && patternString(list[0]["pattern"]) == metaspace
                && list[0]["content"]?.stringValue == " "
            guard ok else {
                throw unsupported("decoder", "\(types.joined(separator: ", ")) (only Replace \"▁\" → \" \", ByteFallback, Fuse is implemented for SentencePiece BPE)")
            }
        } else if types != ["ByteLevel"] {
            throw unsupported("decoder", "type \(types.joined(separator: ", ")) (only ByteLevel is implemented for byte-level BPE)")
        }
    }

    var spec = PipelineSpec(kind: kind, applyNFC: applyNFC)
    if let p = top["post_processor"], !p.isNull {
        for item in items(p, "processors") {
            switch item["type"]?.stringValue ?? "(no type)" {
            case "ByteLevel" where !byteFallback:
                continue // only moves offsets
            case "TemplateProcessing":
                (spec.prefix, spec.suffix) = try templateProcessingSingle(item, file: file)
            case let other:
                throw unsupported("post_processor", "type \(other) for \(family) (implemented: ByteLevel, TemplateProcessing)")
            }
        }
    }
    return spec
}

/// The special-token ids TemplateProcessing's `single` template puts around `$A`.
private func templateProcessingSingle(_ item: JSONValue, file: String) throws(TokenizerError) -> ([Int], [Int]) {
    guard let single = item["single"]?.arrayValue else {
        throw .invalidField(file: file, field: "post_processor.single", reason: "is missing or not an array")
    }
    var before: [Int] = [], after: [Int] = [], sawSequence = false
    for piece in single {
        if piece["Sequence"] != nil {
            guard !sawSequence else { throw .unsupportedComponent(file: file, component: "post_processor.single", detail: "names more than one sequence") }
            sawSequence = true
        } else if let name = piece["SpecialToken"]?["id"]?.stringValue {
            guard let ids = item["special_tokens"]?[name]?["ids"]?.arrayValue?.compactMap(\.intValue), !ids.isEmpty else {
                throw .invalidField(file: file, field: "post_processor.special_tokens[\"\(name)\"].ids", reason: "is missing or not a list of ids")
            }
            if sawSequence { after += ids } else { before += ids }
        } else {
            throw .invalidField(file: file, field: "post_processor.single", reason: "holds an entry that is neither Sequence nor SpecialToken")
        }
    }
    return (before, after)
}

/// Accepts Split (Qwen2 or Llama 3 pattern, Isolated) then ByteLevel without its own regex.
/// Any other pattern would need a different hand-written splitter.
private func checkByteLevelPreTokenizer(_ p: JSONValue?, file: String) throws(TokenizerError) -> SplitPattern {
    guard let p, !p.isNull else {
        throw .unsupportedComponent(file: file, component: "pre_tokenizer", detail: "none given; byte-level BPE needs the Split + ByteLevel sequence of Qwen2 or Llama 3")
    }
    let list = p["type"]?.stringValue == "Sequence" ? (p["pretokenizers"]?.arrayValue ?? []) : [p]
    var split: SplitPattern?, sawByteLevel = false
    for item in list {
        switch item["type"]?.stringValue ?? "(no type)" {
        case "Split":
            let pattern = item["pattern"]?["Regex"]?.stringValue ?? item["pattern"]?["String"]?.stringValue ?? "(none)"
            switch pattern {
            case qwen2SplitPattern: split = .qwen2
            case llama3SplitPattern: split = .llama3
            default:
                throw .unsupportedComponent(file: file, component: "pre_tokenizer Split pattern", detail: "\(pattern) (implemented: the Qwen2 pattern \(qwen2SplitPattern) and the Llama 3 pattern \(llama3SplitPattern))")
            }
            let behavior = item["behavior"]?.stringValue ?? "(none)"
            guard behavior == "Isolated", item["invert"]?.boolValue != true else {
                throw .unsupportedComponent(file: file, component: "pre_tokenizer Split behavior", detail: "\(behavior) (only Isolated, not inverted)")
            }
        case "ByteLevel":
            guard item["use_regex"]?.boolValue == false else {
                throw .unsupportedComponent(file: file, component: "pre_tokenizer ByteLevel.use_regex", detail: "must be false (the GPT-2 regex is not implemented)")
            }
            guard item["add_prefix_space"]?.boolValue != true else {
                throw .unsupportedComponent(file: file, component: "pre_tokenizer ByteLevel.add_prefix_space", detail: "must be false")
            }
            sawByteLevel = true
        case let other:
            throw .unsupportedComponent(file: file, component: "pre_tokenizer", detail: "type \(other)")
        }
    }
    guard let split, sawByteLevel else {
        throw .unsupportedComponent(file: file, component: "pre_tokenizer", detail: "needs both Split (Qwen2 or Llama 3 pattern) and ByteLevel")
    }
    return split
}
