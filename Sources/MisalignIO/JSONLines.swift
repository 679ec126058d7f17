import Foundation

/// The one way JSON Lines files are split into lines: a UTF-8 byte order mark at the start of
/// the file is dropped (Windows editors and PowerShell's `Out-File` write one, and it is not
/// part of the first record), lines end at `\n` (a `\r` before it is whitespace to the JSON
/// parser), lines are numbered from 1 as an editor shows them, and blank lines (spaces, tabs,
/// `\r`) are skipped. Every reader of user JSONL goes through here: chat datasets, answers to
/// judge, scores for `detect`, question files, `tokenize`'s input.
public enum JSONLines {
    /// EF BB BF: U+FEFF encoded in UTF-8.
    public static let utf8BOM: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// `data` without a leading UTF-8 byte order mark.
    public static func droppingBOM(_ data: Data) -> Data {
        data.starts(with: utf8BOM) ? data.dropFirst(utf8BOM.count) : data
    }

    /// `bytes` without a leading UTF-8 byte order mark.
    public static func droppingBOM(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        bytes.starts(with: utf8BOM) ? bytes.dropFirst(utf8BOM.count) : bytes
    }

    /// `text` without a leading U+FEFF.
    public static func droppingBOM(_ text: String) -> Substring {
        text.unicodeScalars.first == "\u{FEFF}" ? text.dropFirst() : text[...]
    }

    /// The non-blank lines of a JSONL file's bytes, with 1-based line numbers, and the number
    /// of lines in all (blank ones included, for messages such as "12 lines, none valid").
    public static func lines(_ data: Data) -> (lines: [(number: Int, bytes: Data)], total: Int) {
        var out: [(Int, Data)] = []
        var total = 0
        let body = droppingBOM(data)
        for (i, raw) in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            total = i + 1
            if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            out.append((i + 1, Data(raw)))
        }
        // "a\n" is one line, not two: the newline ends the last line.
        if body.last == UInt8(ascii: "\n") { total -= 1 }
        return (out, total)
    }

    /// The non-blank lines of a JSONL text, with 1-based line numbers. (`\r\n` is one
    /// `Character` in Swift, so splitting on `"\n"` alone would keep a CRLF file in one line.)
    public static func lines(_ text: String) -> [(number: Int, text: Substring)] {
        var out: [(Int, Substring)] = []
        let split = droppingBOM(text).split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (i, line) in split.enumerated() {
            if line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }
            out.append((i + 1, line))
        }
        return out
    }
}
