import Foundation
import MisalignIO

/// A versioned judging prompt for one trait. The text is data: the shipped rubrics live in
/// `BuiltinRubrics.swift`; a directory of `NAME.rubric` or `NAME.txt` files overrides them by
/// name (`RubricSet.loading(overrides:)`); a persona_vectors trait file gives one
/// (`TraitDefinition`).
///
/// `.rubric` format (UTF-8): `key: value` header lines, one blank line, then the template:
///
///     name: evil
///     version: 1
///     escape: REFUSAL
///
///     ...template with {question} and {answer}...
///
/// `escape` (repeatable, or comma-separated) lists words the judge may answer instead of a
/// number; `REFUSAL` maps to the `refusal` status, any other word (e.g. `CODE`) to
/// `unparseable` with the word in the detail.
public struct Rubric: Sendable, Equatable {
    /// How braces other than the placeholders are read.
    public enum Braces: String, Sendable, Equatable {
        /// Every other brace is sent as written (`.rubric` and `.txt` files, the built-ins).
        case literal
        /// Python `str.format` escapes: `{{` sends `{`, `}}` sends `}` (persona_vectors'
        /// trait files); any other brace is sent as written.
        case doubled
    }
    public let name: String
    public let version: Int
    public let escapeWords: [String]
    public let template: String
    public let braces: Braces
    /// SHA-256 of `fileText` (or of the trait file a rubric came from), lower-case hex: the
    /// rubric's identity in verdicts and cache keys. Computed once here, since every verdict
    /// and cache lookup reads it.
    public let sha256: String

    /// `identity`, when given, is the hash of the file the rubric came from (a trait file);
    /// otherwise the hash of `fileText`.
    public init(name: String, version: Int, escapeWords: [String] = [], template: String, braces: Braces = .literal,
                identity: String? = nil) {
        self.name = name; self.version = version; self.escapeWords = escapeWords; self.template = template
        self.braces = braces
        var s = "name: \(name)\nversion: \(version)\n"
        if !escapeWords.isEmpty { s += "escape: \(escapeWords.joined(separator: ", "))\n" }
        sha256 = identity ?? SHA256.hex(s + "\n" + template)
    }

    /// The escape words a whole-file template (`.txt`, a trait file's `eval_prompt`) offers the
    /// judge: `REFUSAL` and `CODE`, each where the text names it as a word.
    public static func escapeWords(mentionedIn text: String) -> [String] {
        let words = Set(text.split(whereSeparator: { !$0.isLetter }).map(String.init))
        return ["REFUSAL", "CODE"].filter(words.contains)
    }

    /// The rubric in file form; its SHA-256 is the rubric's identity in verdicts and caches.
    public var fileText: String {
        var s = "name: \(name)\nversion: \(version)\n"
        if !escapeWords.isEmpty { s += "escape: \(escapeWords.joined(separator: ", "))\n" }
        return s + "\n" + template
    }

    /// The prompt for one answer. Placeholders are replaced in a single pass, so a question or
    /// answer that itself contains `{answer}` (or `{{`) is inserted verbatim, not expanded.
    public func prompt(question: String, answer: String) -> String {
        var out = ""
        var rest = Substring(template)
        while let i = rest.firstIndex(where: { $0 == "{" || (braces == .doubled && $0 == "}") }) {
            out += rest[..<i]
            let after = rest[i...]
            if after.hasPrefix("{question}") {
                out += question; rest = after.dropFirst("{question}".count)
            } else if after.hasPrefix("{answer}") {
                out += answer; rest = after.dropFirst("{answer}".count)
            } else if braces == .doubled, after.hasPrefix("{{") || after.hasPrefix("}}") {
                out.append(after.first!); rest = after.dropFirst(2)
            } else {
                out.append(after.first!); rest = after.dropFirst()
            }
        }
        return out + rest
    }

    /// The status for an escape word the judge answered, if `text` is one (or an unambiguous
    /// prefix of one, since a one-token answer may hold only its start: "REF" for REFUSAL).
    func escapeStatus(_ text: String) -> (VerdictStatus, String)? {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        guard t.count >= 2 else { return nil }
        for w in escapeWords where w.uppercased().hasPrefix(t) || t.hasPrefix(w.uppercased()) {
            return w.uppercased() == "REFUSAL" ? (.refusal, "escape word \(w)") : (.unparseable, "escape word \(w)")
        }
        return nil
    }

    /// Parses a rubric file. `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(JudgeError) -> Rubric {
        guard let split = text.range(of: "\n\n") else {
            throw .invalidInput("\(file): no blank line between the header and the template")
        }
        var name: String?, version: Int?, escapes: [String] = []
        for (i, line) in text[..<split.lowerBound].split(separator: "\n").enumerated() {
            guard let colon = line.firstIndex(of: ":") else { throw .invalidInput("\(file):\(i + 1): expected `key: value`") }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "name": name = value
            case "version":
                guard let v = Int(value) else { throw .invalidInput("\(file):\(i + 1): version must be an integer") }
                version = v
            case "escape": escapes += value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            default: throw .invalidInput("\(file):\(i + 1): unknown key `\(key)` (expected name, version, escape)")
            }
        }
        guard let name, !name.isEmpty else { throw .invalidInput("\(file): missing `name:`") }
        guard let version else { throw .invalidInput("\(file): missing `version:`") }
        let template = String(text[split.upperBound...])
        guard template.contains("{answer}") else { throw .invalidInput("\(file): the template has no {answer} placeholder") }
        return Rubric(name: name, version: version, escapeWords: escapes, template: template)
    }

    /// A whole-file template (`NAME.txt`, `judges.rubrics` or a trait's `rubric: FILE`): no
    /// header, version 1, named `name`, escape words as `escapeWords(mentionedIn:)` finds them.
    /// Its hash covers the text, so an edit is a new rubric all the same.
    public static func parsePlain(_ text: String, name: String, file: String) throws(JudgeError) -> Rubric {
        guard text.contains("{answer}") else { throw .invalidInput("\(file): the template has no {answer} placeholder") }
        return Rubric(name: name, version: 1, escapeWords: escapeWords(mentionedIn: text), template: text)
    }

    /// Reads a rubric file by its extension: `.rubric` (header, blank line, template) or any
    /// other (`.txt`: the whole file is the template, named `name`).
    public static func load(_ url: URL, name: String) throws(JudgeError) -> Rubric {
        guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: JSONLines.droppingBOM(data), encoding: .utf8) else {
            throw .invalidInput("\(url.path): unreadable or not UTF-8")
        }
        return url.pathExtension == "rubric" ? try parse(text, file: url.path) : try parsePlain(text, name: name, file: url.path)
    }
}
