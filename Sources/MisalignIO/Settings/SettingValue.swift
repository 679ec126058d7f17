import Foundation

/// A setting's value as a source gives it (a flag, a JSON config key, a YAML key), before it is
/// read as the setting's type by its `SettingKey`.
public enum SettingValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case text(String)
    case list([SettingValue])
    /// A mapping (`detection.directions: {evil: up}`), keys in the order written.
    case map([SettingPair])

    /// The value as an integer; a whole number written as a float (`1e3`, `2.0`) counts too.
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .number(let d): return d.isFinite && d == d.rounded() ? Int(exactly: d) : nil
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .number(let d): return d.isFinite ? d : nil
        default: return nil
        }
    }

    /// The items of a list; text is split at commas (`q_proj,v_proj` as a flag gives it), and a
    /// single value is a list of one.
    public var items: [SettingValue] {
        switch self {
        case .list(let l): return l
        case .text(let s):
            return s.split(separator: ",", omittingEmptySubsequences: false).map { .text($0.trimmingCharacters(in: .whitespaces)) }
        case .null: return []
        default: return [self]
        }
    }

    /// The value as written in a JSON file.
    public var shown: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .int(let i): return String(i)
        case .number(let d): return String(d)
        case .text(let s): return "\"\(s)\""
        case .list(let l): return "[" + l.map(\.shown).joined(separator: ", ") + "]"
        case .map(let m): return "{" + m.map { "\"\($0.key)\": \($0.value.shown)" }.joined(separator: ", ") + "}"
        }
    }

    /// A JSON value as a setting's value (an object as a mapping).
    public init(json v: JSONValue) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): if let n = Int(exactly: i) { self = .int(n) } else { self = .number(Double(i)) }
        case .double(let d): self = .number(d)
        case .string(let s): self = .text(s)
        case .array(let a):
            self = .list(a.map(SettingValue.init(json:)))
        case .object(let o): self = .map(o.pairs.map { SettingPair($0.0, SettingValue(json: $0.1)) })
        }
    }
}

/// One key and value of a mapping setting.
public struct SettingPair: Equatable, Sendable {
    public var key: String
    public var value: SettingValue
    public init(_ key: String, _ value: SettingValue) { self.key = key; self.value = value }
}

/// One setting as a source gives it: the key as written there, the value, the value as written
/// (`1e30`), and how the source names such a value in a message about its type (YAML's
/// "float `1.5`", JSON's `1.5`).
public struct SettingEntry: Sendable {
    public var key: String
    public var value: SettingValue
    public var text: String
    public var shown: String

    public init(_ key: String, _ value: SettingValue, text: String? = nil, shown: String? = nil) {
        self.key = key; self.value = value
        self.text = text ?? value.shown
        self.shown = shown ?? self.text
    }
}

/// Where settings come from; a few settings exist in some sources only (an experiment's
/// seeds are its `seeds:` list, so `seed` is not a key of its `training:` section).
public enum SettingSource: String, Sendable {
    /// A command's flags (`misalign train --lr 1e-4`).
    case flags
    /// A JSON settings file (`misalign train --config FILE.json`).
    case json
    /// A section of an experiment's YAML (`training:`, `evaluation:`, ...).
    case yaml
}
