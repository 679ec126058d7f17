import Foundation
import MisalignIO
import MisalignKernels
import MisalignTokenizer

/// One tokenised training conversation: ids and the assistant-only loss mask.
public struct TrainingExample: Sendable, Equatable {
    public var ids: [Int]
    public var mask: [Bool]
    /// 1-based line of the JSONL file it came from.
    public var line: Int
    public init(ids: [Int], mask: [Bool], line: Int) { self.ids = ids; self.mask = mask; self.line = line }
}

/// A chat JSONL training set (`{"messages": [{"role": ..., "content": ...}, ...]}` per line),
/// validated line by line and tokenised with the chat template and the assistant-only mask
/// (reply + its `<|im_end|>`), truncated to `maxLength` tokens.
public struct ChatDataset: Sendable {
    public let examples: [TrainingExample]
    /// Lines skipped as invalid (with `skipInvalid`), with the reason.
    public let skipped: [(line: Int, reason: String)]
    public let file: String

    static let roles: Set<String> = ["system", "user", "assistant", "tool"]

    public init(url: URL, tokenizer: BPETokenizer, maxLength: Int, skipInvalid: Bool = false,
                systemPrompt: SystemPromptPolicy = .templateDefault) throws {
        guard maxLength >= 2 else { throw TrainingError.invalidSetting(name: "max-length", detail: "must be at least 2") }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FileError.cannotOpen(path: url.path, reason: error.localizedDescription)
        }
        file = url.path
        var examples: [TrainingExample] = [], skipped: [(Int, String)] = []
        // A byte order mark at the start is dropped and blank lines are not examples.
        let (lines, lineCount) = JSONLines.lines(data)
        for (lineNo, raw) in lines {
            do {
                let messages = try Self.parse(raw)
                let enc: ChatEncoding
                do { enc = try tokenizer.applyChatTemplate(messages, systemPrompt: systemPrompt) } catch {
                    throw Invalid(reason: "cannot apply the chat template: \(error)")
                }
                let n = min(enc.ids.count, maxLength)
                guard enc.assistantMask[1..<n].contains(true) else {
                    throw Invalid(reason: "no assistant token left to learn within the first \(maxLength) tokens")
                }
                examples.append(TrainingExample(ids: Array(enc.ids[..<n]), mask: Array(enc.assistantMask[..<n]), line: lineNo))
            } catch let e as Invalid {
                if !skipInvalid { throw TrainingError.invalidExample(file: url.path, line: lineNo, reason: e.reason) }
                skipped.append((lineNo, e.reason))
            }
        }
        guard !examples.isEmpty else {
            throw TrainingError.noExamples(file: url.path, detail: "\(lineCount) lines, \(skipped.count) skipped as invalid")
        }
        self.examples = examples
        self.skipped = skipped
    }

    struct Invalid: Error { let reason: String }

    /// One line's conversation, or why it is not one.
    static func parse(_ line: Data) throws -> [ChatMessage] {
        let v: JSONValue
        do { v = try JSONValue.parse(line) } catch { throw Invalid(reason: "invalid JSON: \(error.description)") }
        guard let obj = v.objectValue else { throw Invalid(reason: "expected a JSON object, found \(v.typeName)") }
        guard let list = obj["messages"] else { throw Invalid(reason: "missing field \"messages\"") }
        guard let items = list.arrayValue else { throw Invalid(reason: "\"messages\" is a \(list.typeName), expected a list") }
        guard !items.isEmpty else { throw Invalid(reason: "empty conversation (\"messages\" is [])") }
        var messages: [ChatMessage] = []
        for (i, item) in items.enumerated() {
            guard let role = item["role"]?.stringValue else { throw Invalid(reason: "message \(i) has no string \"role\"") }
            guard roles.contains(role) else {
                throw Invalid(reason: "message \(i) has unknown role \"\(role)\" (expected system, user, assistant or tool)")
            }
            guard let content = item["content"]?.stringValue else { throw Invalid(reason: "message \(i) has no string \"content\"") }
            messages.append(ChatMessage(role: role, content: content))
        }
        guard messages.contains(where: { $0.role == "assistant" }) else { throw Invalid(reason: "no assistant turn to learn from") }
        return messages
    }

    /// The order of the examples in `epoch`: a Fisher-Yates shuffle by SplitMix64(seed, stream: epoch),
    /// so the order of every epoch follows from the seed alone (nothing to store for resuming).
    public func order(epoch: Int, seed: UInt64) -> [Int] { Self.order(count: examples.count, epoch: epoch, seed: seed) }

    public static func order(count: Int, epoch: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed, stream: UInt64(epoch) &+ 0xDA7A)
        var idx = Array(0..<count)
        for i in stride(from: idx.count - 1, to: 0, by: -1) { idx.swapAt(i, rng.below(i + 1)) }
        return idx
    }
}
