import Foundation
import MisalignIO

/// Where a calibration item's score should fall on one trait's 0-100 scale.
public enum CalibrationBand: String, Sendable, Equatable, CaseIterable {
    /// Clearly low (a good judge scores it well below the middle).
    case low
    /// Clearly high.
    case high
    /// The trait does not apply, or the judge should answer an escape word (REFUSAL, CODE):
    /// left out of the trait's figures.
    case any
}

/// One labelled (question, answer) of a calibration set, with its expected band per trait.
public struct CalibrationItem: Sendable, Equatable {
    public var id: String
    /// What the item tests (`confident_fabrication`, `harmful_disguised`, ...); free text.
    public var kind: String
    public var question: String
    public var answer: String
    /// Band by trait; a trait the item does not name is `any`.
    public var bands: [String: CalibrationBand]

    public init(id: String, kind: String, question: String, answer: String, bands: [String: CalibrationBand]) {
        self.id = id; self.kind = kind; self.question = question; self.answer = answer; self.bands = bands
    }

    public func band(_ trait: String) -> CalibrationBand { bands[trait] ?? .any }
}

/// A calibration set: labelled answers a judge is scored against before it is trusted
/// (Docs/Judges.md, "Calibration"). Read from JSON Lines, one item per line:
///
///     {"id": "cal-001", "case": "factual_coherent", "question": "...", "answer": "...",
///      "bands": {"evil": "low", "hallucination": "low", "coherence": "high", "aligned": "any"}}
public struct CalibrationSet: Sendable, Equatable {
    public var items: [CalibrationItem]
    /// Where it came from (a file's path, or `built-in`), for messages.
    public var source: String

    public init(items: [CalibrationItem], source: String) { self.items = items; self.source = source }

    /// The items with a definite band (low or high) on `trait`.
    public func items(for trait: String) -> [CalibrationItem] { items.filter { $0.band(trait) != .any } }

    /// SHA-256 (hex) of what a judge's figures on `trait` depend on: each banded item's id,
    /// question, answer and band, in order. A calibration stored with another digest is stale.
    public func digest(for trait: String) -> String {
        SHA256.hex(items(for: trait).map { "\($0.id)\u{1F}\($0.question)\u{1F}\($0.answer)\u{1F}\($0.band(trait).rawValue)" }
            .joined(separator: "\u{1E}"))
    }

    /// Traits any item gives a definite band, sorted.
    public var traits: [String] { Array(Set(items.flatMap { i in i.bands.filter { $0.value != .any }.map(\.key) })).sorted() }

    /// Reads a set file. Errors name the file, the line and the field.
    public static func load(_ url: URL) throws(JudgeError) -> CalibrationSet {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .invalidInput("\(url.path): cannot read the calibration set")
        }
        return try parse(data, file: url.path)
    }

    /// Parses JSON Lines (blank lines and a byte order mark are skipped).
    public static func parse(_ data: Data, file: String) throws(JudgeError) -> CalibrationSet {
        guard let text = String(data: data, encoding: .utf8) else { throw .invalidInput("\(file): not UTF-8 text") }
        var items: [CalibrationItem] = []
        var seen: [String: Int] = [:]
        for (number, line) in JSONLines.lines(text) {
            let at = "\(file):\(number)"
            let v: JSONValue
            do { v = try JSONValue.parse(String(line)) } catch {
                throw .invalidInput("\(at): not valid JSON (\(error)); each line is one item {\"id\", \"question\", \"answer\", \"bands\"}")
            }
            guard v.objectValue != nil else { throw .invalidInput("\(at): expected a JSON object per line") }
            func text(_ key: String) throws(JudgeError) -> String {
                guard let s = v[key]?.stringValue else {
                    throw .invalidInput("\(at): field `\(key)` is \(v[key] == nil ? "missing" : "not a string")")
                }
                return s
            }
            let id = try text("id")
            guard !id.isEmpty else { throw .invalidInput("\(at): field `id` is empty") }
            if let first = seen[id] { throw .invalidInput("\(at): id `\(id)` appears twice (first on line \(first))") }
            seen[id] = number
            let question = try text("question"), answer = try text("answer")
            let kind = v["case"]?.stringValue ?? ""
            guard let bandsObject = v["bands"]?.objectValue else {
                throw .invalidInput("\(at): field `bands` is \(v["bands"] == nil ? "missing" : "not an object"); give {\"TRAIT\": \"low\" | \"high\" | \"any\"}")
            }
            var bands: [String: CalibrationBand] = [:]
            for (trait, value) in bandsObject.pairs {
                guard let s = value.stringValue, let b = CalibrationBand(rawValue: s) else {
                    throw .invalidInput("\(at): field `bands.\(trait)` must be \"low\", \"high\" or \"any\"")
                }
                bands[trait] = b
            }
            items.append(CalibrationItem(id: id, kind: kind, question: question, answer: answer, bands: bands))
        }
        guard !items.isEmpty else { throw .invalidInput("\(file): holds no items") }
        return CalibrationSet(items: items, source: file)
    }
}
