import ArgumentParser
import Foundation
import MisalignCore

/// `misalign tokenize`: JSONL in, JSONL out, one line per line, using the model's own files.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text or chat conversations to token ids (or decode ids) with a model's tokenizer.",
        discussion: """
        Reads JSON Lines on standard input and writes one JSON line per input line, in \
        order (blank lines are skipped). Ids equal Hugging Face `tokenizers` with \
        add_special_tokens=False, and transformers' apply_chat_template for chats.

        Encode input, one object per line:
          {"text": "Hello, world!"}
          {"messages": [{"role": "user", "content": "Hi"}],
           "add_generation_prompt": true}
        A chat line may add "system_prompt": "text" to replace the default
        system prompt, or "system_prompt": null for no system turn.
        Output: {"ids":[...]}, plus "mask":[0,1,...] with --with-mask.

        Decode input (--decode): {"ids": [9707, 11, 1879, 0]}
        Output: {"text":"Hello, world!"}

        Examples:
          echo '{"text": "Hello, world!"}' \\
            | misalign tokenize --tokenizer ~/models/Qwen2.5-0.5B-Instruct
          misalign tokenize --tokenizer DIR --with-mask < chats.jsonl > ids.jsonl
          echo '{"ids": [9707, 0]}' | misalign tokenize --tokenizer DIR --decode

        A malformed line stops the run with an error naming its line number \
        (exit code 1); lines before it have already been written.
        """
    )

    @Option(name: .long, help: "Directory containing tokenizer.json (and tokenizer_config.json).")
    var tokenizer: String

    @Flag(name: .long, help: "Decode {\"ids\": [...]} lines to {\"text\": ...} instead of encoding.")
    var decode = false

    @Flag(name: .long, help: "With --decode, drop special tokens such as <|im_end|> from the text.")
    var skipSpecialTokens = false

    @Flag(name: .long, help: "For chat lines, also write \"mask\": 1 for tokens trained on (assistant replies and their <|im_end|>).")
    var withMask = false

    func run() throws {
        let tok: BPETokenizer
        do { tok = try BPETokenizer(directory: URL(fileURLWithPath: (tokenizer as NSString).expandingTildeInPath)) } catch {
            throw CLIError(error.description)
        }
        let processor = TokenizeJSONL(tokenizer: tok, decode: decode, skipSpecialTokens: skipSpecialTokens, includeMask: withMask)
        var lineNumber = 0
        let out = FileHandle.standardOutput
        // Raw bytes, not readLine(): readLine silently repairs invalid UTF-8, which would
        // tokenize something other than what the user wrote.
        func handle(_ raw: ArraySlice<UInt8>) throws {
            lineNumber += 1
            let line = lineNumber == 1 ? JSONLines.droppingBOM(raw) : raw  // a byte order mark opening the input
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
            do {
                let result = try processor.process(utf8: line, lineNumber: lineNumber)
                out.write(Data((result + "\n").utf8))
            } catch {
                throw CLIError(error.description)
            }
        }
        var buffer: [UInt8] = []
        while true {
            let chunk = FileHandle.standardInput.availableData // returns as soon as input arrives
            if chunk.isEmpty { break }
            buffer.append(contentsOf: chunk)
            var start = 0
            while let nl = buffer[start...].firstIndex(of: 0x0A) {
                try handle(buffer[start..<nl])
                start = nl + 1
            }
            buffer.removeFirst(start)
        }
        if !buffer.isEmpty { try handle(buffer[...]) }
    }
}
