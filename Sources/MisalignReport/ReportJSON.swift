import Foundation
import MisalignIO

/// What can go wrong building or reading a report; each case names the file and what to do.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    /// The JSON does not match `ReportInput`; `field` is the coding path (e.g. `runs[0].lag`).
    case invalidJSON(path: String, field: String, reason: String)
    case unsupportedFormat(path: String, found: Int)
    case invalidMetrics(file: String, line: Int, reason: String)
    /// A run folder was given that holds no readable run store (`store.sqlite`).
    case notARun(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(p, r): return "\(p): cannot read (\(r)); check the path"
        case let .invalidJSON(p, f, r):
            return "\(p): \(f.isEmpty ? "" : "at \(f): ")\(r); the file must be a report input saved by ReportInput.save(jsonTo:) (see Docs/Report.md)"
        case let .unsupportedFormat(p, v):
            return "\(p): report input format \(v) is newer than this misalign understands (\(ReportInput.currentFormat)); upgrade misalign"
        case let .invalidMetrics(f, l, r): return "\(f) line \(l): \(r); each line must be a JSON object with step, loss and lr"
        case let .notARun(p, r):
            return "\(p): cannot report on this run folder (\(r)); give the `output` folder of a `misalign run` config, "
                + "or render a saved input with ReportInput.load(jsonAt:)"
        }
    }
}

extension ReportInput {
    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }

    /// The input as pretty JSON (sorted keys, so two saves of one input are byte-identical).
    /// NaN and infinities are written as the strings "NaN", "Infinity", "-Infinity".
    public func jsonData() -> Data {
        // Every field is a plain value type with finite-or-stringified numbers: encoding cannot fail.
        try! Self.encoder().encode(self)
    }

    /// Writes the JSON atomically.
    public func save(jsonTo url: URL) throws {
        try AtomicFile.write(jsonData(), to: url)
    }

    /// Decodes JSON written by `jsonData()`; errors name `path` and the field.
    public static func decode(_ data: Data, path: String = "report input") throws(ReportError) -> ReportInput {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        struct Header: Decodable { var format: Int? }
        if let h = try? d.decode(Header.self, from: data), let f = h.format, f > currentFormat {
            throw .unsupportedFormat(path: path, found: f)
        }
        do {
            return try d.decode(ReportInput.self, from: data)
        } catch let e as DecodingError {
            throw Self.describe(e, path: path)
        } catch {
            throw .invalidJSON(path: path, field: "", reason: "\(error)")
        }
    }

    /// Reads a saved input (`misalign report --input FILE`).
    public static func load(jsonAt url: URL) throws(ReportError) -> ReportInput {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .cannotRead(path: url.path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, path: url.path)
    }

    static func describe(_ e: DecodingError, path: String) -> ReportError {
        func field(_ p: [any CodingKey]) -> String {
            p.reduce("") { s, k in
                if let i = k.intValue { return s + "[\(i)]" }
                return s.isEmpty ? k.stringValue : s + "." + k.stringValue
            }
        }
        switch e {
        case let .keyNotFound(k, c):
            let f = field(c.codingPath)
            return .invalidJSON(path: path, field: f, reason: "missing key '\(k.stringValue)'")
        case let .typeMismatch(t, c): return .invalidJSON(path: path, field: field(c.codingPath), reason: "expected \(t)")
        case let .valueNotFound(t, c): return .invalidJSON(path: path, field: field(c.codingPath), reason: "expected \(t), found null")
        case let .dataCorrupted(c):
            let underlying = (c.underlyingError as NSError?)?.localizedDescription
            return .invalidJSON(path: path, field: field(c.codingPath), reason: underlying.map { "not valid JSON (\($0))" } ?? c.debugDescription)
        @unknown default: return .invalidJSON(path: path, field: "", reason: "\(e)")
        }
    }
}

extension ReportError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
