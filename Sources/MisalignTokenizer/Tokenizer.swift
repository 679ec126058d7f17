import Foundation

/// What the rest of Misalign needs from a tokenizer. `BPETokenizer` implements it for
/// Hugging Face BPE files (byte-level: Qwen2, Llama 3; SentencePiece-style: Gemma 2); plug in
/// another type to use a different tokenizer.
public protocol Tokenizer: Sendable {
    /// Number of ids, added tokens included (HF `get_vocab_size(with_added_tokens=True)`).
    var vocabularySize: Int { get }
    /// Ids for `text`, without any template or BOS/EOS (HF `add_special_tokens=False`).
    /// Special tokens written in the text (such as `<|im_end|>`) are recognised as tokens.
    func encode(_ text: String) -> [Int]
    /// The text for `ids`; invalid UTF-8 produced by odd id sequences becomes U+FFFD.
    func decode(_ ids: [Int], skipSpecialTokens: Bool) throws(TokenizerError) -> String
    /// Special tokens by content, for example `"<|im_end|>": 151645`.
    var specialTokenIDs: [String: Int] { get }
    /// The end-of-sequence id generation stops at, if the tokenizer names one.
    var eosTokenID: Int? { get }
    /// The id used for padding, if the tokenizer names one.
    var padTokenID: Int? { get }
    /// The id of a token given by its text (vocabulary spelling or added token content).
    func tokenID(for token: String) -> Int?
}

extension Tokenizer {
    public func decode(_ ids: [Int]) throws(TokenizerError) -> String {
        try decode(ids, skipSpecialTokens: false)
    }
}
