import Foundation

/// A versioned judging prompt for one trait. The text is data: the shipped rubrics live in
/// `BuiltinRubrics.swift`, and a directory of `NAME.rubric` files overrides them by name.
///
/// File format (UTF-8): `key: value` header lines, one blank line, then the template:
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
    public let name: String
    public let version: Int
    public let escapeWords: [String]
    public let template: String
    /// SHA-256 of `fileText`, lower-case hex: the rubric's identity in verdicts and cache
    /// keys. Computed once here, since every verdict and cache lookup reads it.
    public let sha256: String

    public init(name: String, version: Int, escapeWords: [String] = [], template: String) {
        self.name = name; self.version = version; self.escapeWords = escapeWords; self.template = template
        var s = "name: \(name)\nversion: \(version)\n"
        if !escapeWords.isEmpty { s += "escape: \(escapeWords.joined(separator: ", "))\n" }
        sha256 = SHA256.hex(s + "\n" + template)
    }

    /// The rubric in file form; its SHA-256 is the rubric's identity in verdicts and caches.
    public var fileText: String {
        var s = "name: \(name)\nversion: \(version)\n"
        if !escapeWords.isEmpty { s += "escape: \(escapeWords.joined(separator: ", "))\n" }
        return s + "\n" + template
    }

    /// The prompt for one answer. Placeholders are replaced in a single pass, so a question or
    /// answer that itself contains `{answer}` is inserted verbatim, not expanded.
    public func prompt(question: String, answer: String) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let after = rest[open...]
            if after.hasPrefix("{question}") {
                out += question; rest = after.dropFirst("{question}".count)
            } else if after.hasPrefix("{answer}") {
                out += answer; rest = after.dropFirst("{answer}".count)
            } else {
                out += "{"; rest = after.dropFirst()
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
}

/// The rubrics available by name: the shipped ones, overridden by a directory's files.
public struct RubricSet: Sendable {
    public private(set) var rubrics: [String: Rubric]

    /// The shipped rubrics: evil, hallucination, coherence, aligned.
    public static let builtin = RubricSet(rubrics: Dictionary(uniqueKeysWithValues: BuiltinRubrics.all.map { ($0.name, $0) }))

    /// The shipped rubrics with every `*.rubric` file in `directory` added or replacing the
    /// shipped one of the same name.
    public static func loading(overrides directory: URL) throws(JudgeError) -> RubricSet {
        var set = builtin
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: directory.path) } catch {
            throw .invalidInput("cannot list rubric directory \(directory.path): \(error.localizedDescription)")
        }
        for f in files.sorted() where f.hasSuffix(".rubric") {
            let path = directory.appendingPathComponent(f).path
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: JSONLines.droppingBOM(data), encoding: .utf8) else {
                throw .invalidInput("\(path): unreadable or not UTF-8")
            }
            let r = try Rubric.parse(text, file: path)
            set.rubrics[r.name] = r
        }
        return set
    }

    public subscript(name: String) -> Rubric? { rubrics[name] }

    /// The rubric named `name`, or an error listing the known names.
    public func require(_ name: String) throws(JudgeError) -> Rubric {
        guard let r = rubrics[name] else {
            throw .invalidInput("unknown trait `\(name)`; known: \(rubrics.keys.sorted().joined(separator: ", "))")
        }
        return r
    }
}
