import Foundation

/// A parsed JSON document. Objects keep their keys in file order (safetensors headers and
/// `tokenizer.json` vocabularies are easier to report and to round-trip that way).
///
/// The parser is ours rather than `JSONSerialization` because we need three things it does
/// not give: duplicate keys detected (a safetensors header with two tensors of one name is
/// corrupt), integers kept exact up to 64 bits (offsets past 2^53), and a hard depth limit so a
/// hostile header cannot overflow the stack.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in `Int64`.
    case int(Int64)
    /// Any other number.
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var objectValue: JSONObject? { if case .object(let o) = self { return o }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }
    /// The value as an exact integer (an integral double such as `2.0` counts too).
    public var intValue: Int? {
        switch self {
        case .int(let i): return Int(exactly: i)
        case .double(let d): return d.rounded() == d && abs(d) < 9.0e15 ? Int(d) : nil
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// A short name of the value's type for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// A JSON object with its keys in document order and O(1) lookup.
public struct JSONObject: Equatable, Sendable {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []
    private var index: [String: Int] = [:]

    public init() {}
    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }
    public var count: Int { keys.count }
    public subscript(key: String) -> JSONValue? {
        get { index[key].map { values[$0] } }
        set {
            if let i = index[key] {
                if let newValue { values[i] = newValue } else {
                    keys.remove(at: i); values.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
                }
            } else if let newValue {
                index[key] = keys.count; keys.append(key); values.append(newValue)
            }
        }
    }
    public var pairs: Zip2Sequence<[String], [JSONValue]> { zip(keys, values) }
    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.keys == b.keys && a.values == b.values }
    /// Adds a key without checking for an existing one; returns false if it was a duplicate.
    fileprivate mutating func appendChecking(_ key: String, _ value: JSONValue) -> Bool {
        if index[key] != nil { return false }
        index[key] = keys.count; keys.append(key); values.append(value)
        return true
    }
}

/// Why a JSON text could not be parsed; `offset` is the byte offset in the input.
public struct JSONParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public var offset: Int
    /// For a duplicate-key error: the key, and the nesting depth of its object (1 = top level).
    public var duplicateKey: String? = nil
    public var depth: Int = 0
    public var description: String { "\(message) at byte \(offset)" }
}

extension JSONValue {
    /// Parses a complete JSON text (RFC 8259). Duplicate keys in one object are an error.
    public static func parse(_ data: Data, maxDepth: Int = 512) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = data.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) -> JSONValue in try parse(raw, maxDepth: maxDepth) }
        }
        return try result.get()
    }

    public static func parse(_ text: String, maxDepth: Int = 512) throws(JSONParseError) -> JSONValue {
        try parse(Data(text.utf8), maxDepth: maxDepth)
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 512) throws(JSONParseError) -> JSONValue {
        var p = JSONParser(bytes: bytes, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        if p.pos != p.end { throw p.error("unexpected text after the JSON value") }
        return v
    }
}

private struct JSONParser {
    let base: UnsafePointer<UInt8>?
    let end: Int
    var pos = 0
    let maxDepth: Int

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        end = bytes.count
        self.maxDepth = maxDepth
    }

    func error(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: pos) }

    @inline(__always) func peek() -> UInt8? { pos < end ? base![pos] : nil }

    mutating func skipWhitespace() {
        while pos < end {
            let c = base![pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { break }
        }
    }

    mutating func expect(_ literal: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        let n = literal.utf8CodeUnitCount
        guard end - pos >= n, memcmp(base! + pos, literal.utf8Start, n) == 0 else {
            throw error("invalid literal")
        }
        pos += n
        return value
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let c = peek() else { throw error("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character '\(Unicode.Scalar(c).escaped(asASCII: true))'")
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)") }
        pos += 1
        var obj = JSONObject()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { pos += 1; return .object(obj) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyStart = pos
            let key = try parseString()
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw error("expected ':' after key") }
            pos += 1
            skipWhitespace()
            let v = try parseValue(depth: depth)
            if !obj.appendChecking(key, v) {
                throw JSONParseError(message: "duplicate key \"\(key)\"", offset: keyStart, duplicateKey: key, depth: depth)
            }
            skipWhitespace()
            guard let c = peek() else { throw error("unexpected end of input in object") }
            pos += 1
            if c == UInt8(ascii: "}") { return .object(obj) }
            if c != UInt8(ascii: ",") { pos -= 1; throw error("expected ',' or '}' in object") }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)") }
        pos += 1
        var arr: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos += 1; return .array(arr) }
        while true {
            skipWhitespace()
            arr.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let c = peek() else { throw error("unexpected end of input in array") }
            pos += 1
            if c == UInt8(ascii: "]") { return .array(arr) }
            if c != UInt8(ascii: ",") { pos -= 1; throw error("expected ',' or ']' in array") }
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard end - pos >= 4 else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base![pos]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("bad hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func parseString() throws(JSONParseError) -> String {
        pos += 1 // opening quote
        let start = pos
        // Fast path: no escapes.
        while pos < end {
            let c = base![pos]
            if c == UInt8(ascii: "\"") {
                let buf = UnsafeBufferPointer(start: base! + start, count: pos - start)
                guard let s = String(validating: buf, as: UTF8.self) else {
                    pos = start; throw error("string is not valid UTF-8")
                }
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in string") }
            pos += 1
        }
        // Slow path with escapes.
        var bytes = [UInt8](UnsafeBufferPointer(start: base! + start, count: pos - start))
        while true {
            guard pos < end else { throw error("unterminated string") }
            let c = base![pos]
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") { bytes.append(c); pos += 1; continue }
            pos += 1
            guard pos < end else { throw error("unterminated escape") }
            let e = base![pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard end - pos >= 6, base![pos] == UInt8(ascii: "\\"), base![pos + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw error("unpaired surrogate in \\u escape")
                }
                let scalar = Unicode.Scalar(code)!
                bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                pos -= 1
                throw error("invalid escape")
            }
        }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return s
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = pos
        var isInteger = true
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            throw error("invalid number")
        }
        if first == UInt8(ascii: "0") {
            pos += 1
        } else {
            while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { pos += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            var digits = 0
            while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { pos += 1; digits += 1 }
            if digits == 0 { throw error("invalid number: no digits after '.'") }
        }
        if let c = peek(), c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            var digits = 0
            while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { pos += 1; digits += 1 }
            if digits == 0 { throw error("invalid number: no digits in exponent") }
        }
        let text = String(decoding: UnsafeBufferPointer(start: base! + start, count: pos - start), as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        guard let d = Double(text) else { throw JSONParseError(message: "invalid number", offset: start) }
        return .double(d)
    }
}

// MARK: - Writing

extension JSONValue {
    /// Compact JSON text. Object keys are written in stored order; doubles use the shortest
    /// representation that round-trips.
    public func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isFinite {
                if d.rounded() == d && abs(d) < 1e15 { out += String(Int64(d)) } else { out += "\(d)" }
            } else { out += "null" } // JSON has no NaN/Inf
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() { if i > 0 { out += "," }; v.write(to: &out) }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, (k, v)) in o.pairs.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(k, to: &out)
                out += ":"
                v.write(to: &out)
            }
            out += "}"
        }
    }

    public static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

extension JSONParseError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
