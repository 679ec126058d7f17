import Foundation

/// Everything a user's tokenizer files or inputs can get wrong. Each case names the file or
/// field involved, and its description says what to do about it.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required file is not there (`tokenizer.json` or `tokenizer_config.json`).
    case fileMissing(path: String)
    /// The file exists but cannot be read or is not valid JSON.
    case fileCorrupt(path: String, reason: String)
    /// A field is missing or has the wrong type. `field` is a dotted path such as `model.vocab`.
    case invalidField(file: String, field: String, reason: String)
    /// The file uses a component or option this implementation does not provide.
    case unsupportedComponent(file: String, component: String, detail: String)
    /// A merge names a token (or produces one) that the vocabulary does not contain.
    case mergeUnknownToken(file: String, mergeIndex: Int, token: String)
    /// The vocabulary lacks the single-byte token for `byte`, so some inputs could not be encoded.
    case missingByteToken(file: String, byte: UInt8)
    /// Raw input bytes are not valid UTF-8; `offset` is the first bad byte.
    case invalidUTF8(offset: Int)
    /// A token id outside `0..<vocabularySize` was given to the decoder.
    case idOutOfRange(id: Int, vocabularySize: Int)
    /// A chat conversation cannot be rendered by the template (for example an unknown role).
    case chatTemplate(reason: String)
    /// The `chat_template` in `file` (tokenizer_config.json) of `model` is none of the
    /// families Misalign renders (`ChatTemplateFamily`).
    case unknownChatTemplate(file: String, model: String)
    /// A line of JSONL input to `misalign tokenize` is malformed (`line` counts from 1).
    case badInputLine(line: Int, reason: String)

    public var description: String {
        switch self {
        case .fileMissing(let path):
            return "tokenizer file not found: \(path). Point the tokenizer folder at the model directory that holds tokenizer.json and tokenizer_config.json (as downloaded from Hugging Face)."
        case .fileCorrupt(let path, let reason):
            return "cannot read tokenizer file \(path): \(reason). Re-download the file; it may be truncated or not JSON."
        case .invalidField(let file, let field, let reason):
            return "\(file): field '\(field)' \(reason). The file does not look like a Hugging Face tokenizer file; re-download it."
        case .unsupportedComponent(let file, let component, let detail):
            return "\(file): unsupported \(component): \(detail). Misalign implements the byte-level BPE tokenizers of Qwen2/Qwen2.5 and Llama 3.x (Split with their pattern, ByteLevel) and the SentencePiece-style BPE of Gemma 2 (Replace \" \" → \"▁\", byte fallback); use a model with one of those tokenizers or plug in your own Tokenizer implementation."
        case .mergeUnknownToken(let file, let index, let token):
            return "\(file): merge #\(index) uses token '\(token)', which is not in model.vocab. The merges and vocabulary do not belong together; re-download tokenizer.json."
        case .missingByteToken(let file, let byte):
            return "\(file): model.vocab has no token for byte 0x\(String(byte, radix: 16, uppercase: true)); a byte-level BPE vocabulary must contain all 256 byte tokens, and a SentencePiece one with byte_fallback all 256 <0xNN> tokens."
        case .invalidUTF8(let offset):
            return "input is not valid UTF-8 (first bad byte at offset \(offset)); convert the text to UTF-8 before tokenizing."
        case .idOutOfRange(let id, let size):
            return "token id \(id) is out of range: this tokenizer has ids 0..<\(size). The ids were probably produced by a different tokenizer."
        case .chatTemplate(let reason):
            return "cannot render chat template: \(reason)"
        case .unknownChatTemplate(let file, let model):
            return "\(file): the chat_template of \(model) is not one Misalign renders (ChatML as in Qwen2/Qwen2.5, Llama 3.x, Gemma 2), and rendering it as another family would train and prompt the model in a format it does not know. Use a model with one of those templates, or give the tokenizer folder a tokenizer_config.json whose chat_template is one of them."
        case .badInputLine(let line, let reason):
            return "input line \(line): \(reason)"
        }
    }
}

extension TokenizerError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
