import Foundation

// The kinds of value most settings are, each read, checked and recorded the same way in every
// group: integers, numbers, booleans, one of a few words, free text.
extension SettingKey {
    /// An integer in `range`; recorded as written (`64`).
    public static func intSetting(_ name: String, _ kp: WritableKeyPath<Options, Int>, _ range: ClosedRange<Int>, yaml: String? = nil,
                                  aliases: [String] = [], note: String = "", effect: SettingEffect,
                                  sources: Set<SettingSource> = [.flags, .json, .yaml]) -> SettingKey {
        SettingKey(name: name, yaml: yaml, aliases: aliases, expected: "an integer", effect: effect, sources: sources,
                   read: { o, e throws(SettingProblem) in o[keyPath: kp] = try integer(e, max: range.upperBound) },
                   check: { inRange($0[keyPath: kp], range, note: note) }, record: { String($0[keyPath: kp]) })
    }

    /// A number in `range` (`upperOpen`: below its top); recorded by `compact` (`64` for 64.0)
    /// or as Swift prints it (`64.0`).
    public static func doubleSetting(_ name: String, _ kp: WritableKeyPath<Options, Double>, yaml: String? = nil, aliases: [String] = [],
                                     in range: ClosedRange<Double>, upperOpen: Bool = false, lowerOpen: Bool = false, note: String = "",
                                     effect: SettingEffect, compact: Bool = false,
                                     sources: Set<SettingSource> = [.flags, .json, .yaml]) -> SettingKey {
        let lo = number(range.lowerBound), hi = number(range.upperBound)
        let bounds = upperOpen || lowerOpen ? "in \(lowerOpen ? "(" : "[")\(lo), \(hi)\(upperOpen ? ")" : "]")" : nil
        return SettingKey(
            name: name, yaml: yaml, aliases: aliases, expected: "a number", effect: effect, sources: sources,
            read: { o, e throws(SettingProblem) in o[keyPath: kp] = try number(e) },
            check: { o in
                let x = o[keyPath: kp]
                let fits = x.isFinite && (lowerOpen ? x > range.lowerBound : x >= range.lowerBound)
                    && (upperOpen ? x < range.upperBound : x <= range.upperBound)
                if fits { return nil }
                if let bounds { return "is \(x); must be \(bounds)\(note)" }
                return x >= range.lowerBound && x.isFinite ? "is \(x); must be <= \(hi)" : "is \(x); must be >= \(lo)\(note)"
            },
            record: { o in compact ? number(o[keyPath: kp]) : String(o[keyPath: kp]) })
    }

    public static func boolSetting(_ name: String, _ kp: WritableKeyPath<Options, Bool>, yaml: String? = nil, aliases: [String] = [],
                                   effect: SettingEffect, sources: Set<SettingSource> = [.flags, .json, .yaml]) -> SettingKey {
        SettingKey(name: name, yaml: yaml, aliases: aliases, expected: "true or false", effect: effect, sources: sources,
                   read: { o, e throws(SettingProblem) in
                       guard case .bool(let x) = e.value else { throw SettingProblem(detail: "expected true or false, found \(e.shown)") }
                       o[keyPath: kp] = x
                   },
                   record: { String($0[keyPath: kp]) })
    }

    /// One of `names` (matched without regard to case); recorded by `show`.
    public static func choiceSetting<T: Equatable>(_ name: String, _ kp: WritableKeyPath<Options, T>, _ names: [(String, T)], yaml: String? = nil,
                                                   aliases: [String] = [], show: @escaping (T) -> String, allowed: String? = nil,
                                                   effect: SettingEffect, sources: Set<SettingSource> = [.flags, .json, .yaml],
                                                   omittedValue: String? = nil, check: @escaping (T) -> Bool = { _ in true }) -> SettingKey {
        let allowed = allowed ?? {
            let n = names.map(\.0)
            return n.count == 1 ? n[0] : n.dropLast().joined(separator: ", ") + " or " + n.last!
        }()
        return SettingKey(
            name: name, yaml: yaml, aliases: aliases, expected: allowed, effect: effect, sources: sources, omittedValue: omittedValue,
            read: { o, e throws(SettingProblem) in
                guard case .text(let s) = e.value, let x = names.first(where: { $0.0 == s.lowercased() })?.1 else {
                    throw SettingProblem(detail: "expected \(allowed), found \(e.shown)")
                }
                o[keyPath: kp] = x
            },
            check: { check($0[keyPath: kp]) ? nil : "must be \(allowed)" }, record: { show($0[keyPath: kp]) })
    }

    /// A seed: a non-negative integer up to UInt64's range (a flag hands it over as digits).
    public static func seedSetting(_ name: String, _ kp: WritableKeyPath<Options, UInt64>, aliases: [String] = [], effect: SettingEffect,
                                   sources: Set<SettingSource> = [.flags, .json, .yaml]) -> SettingKey {
        SettingKey(name: name, aliases: aliases, expected: "a non-negative integer", effect: effect, sources: sources,
                   read: { o, e throws(SettingProblem) in
                       if let i = e.value.intValue, i >= 0 { o[keyPath: kp] = UInt64(i); return }
                       if case .text(let s) = e.value, let u = UInt64(s) { o[keyPath: kp] = u; return }
                       throw SettingProblem(detail: "expected a non-negative integer, found \(e.shown)")
                   },
                   record: { String($0[keyPath: kp]) })
    }

    /// Any text (`nil` when the source gives null, for an optional); recorded by `record`.
    public static func textSetting(_ name: String, _ kp: WritableKeyPath<Options, String?>, yaml: String? = nil, aliases: [String] = [],
                                   expected: String = "text", effect: SettingEffect, sources: Set<SettingSource> = [.flags, .json, .yaml],
                                   check: @escaping (String?) -> String? = { _ in nil },
                                   record: @escaping (String?) -> String = { $0 ?? "none" }) -> SettingKey {
        SettingKey(name: name, yaml: yaml, aliases: aliases, expected: expected, effect: effect, sources: sources,
                   read: { o, e throws(SettingProblem) in
                       switch e.value {
                       case .null: o[keyPath: kp] = nil
                       case .text(let s): o[keyPath: kp] = s
                       default: throw SettingProblem(detail: "expected \(expected), found \(e.shown)")
                       }
                   },
                   check: { check($0[keyPath: kp]) }, record: { record($0[keyPath: kp]) })
    }

    /// An integer; a whole number past Int's range is refused with the bound; digits given as
    /// text (a flag's value) count too.
    public static func integer(_ e: SettingEntry, max: Int) throws(SettingProblem) -> Int {
        if let i = e.value.intValue { return i }
        if case .number(let d) = e.value, d.isFinite, d == d.rounded() { throw SettingProblem(detail: "is \(e.text); must be <= \(max)") }
        throw SettingProblem(detail: "expected an integer, found \(e.shown)")
    }

    /// A number; not-finite ones pass, for the check to refuse naming the range.
    public static func number(_ e: SettingEntry) throws(SettingProblem) -> Double {
        if case .int(let i) = e.value { return Double(i) }
        if case .number(let d) = e.value { return d }
        throw SettingProblem(detail: "expected a number, found \(e.shown)")
    }

    public static func inRange(_ x: Int, _ r: ClosedRange<Int>, note: String = "") -> String? {
        x < r.lowerBound ? "is \(x); must be >= \(r.lowerBound)\(note)" : x > r.upperBound ? "is \(x); must be <= \(r.upperBound)" : nil
    }

    /// A number as settings print it: whole numbers without `.0` (`64`), others as Swift does.
    public static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
