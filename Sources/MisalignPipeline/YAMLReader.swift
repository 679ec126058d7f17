import Foundation
import Yams
import MisalignTokenizer

/// A strict view of one YAML node: typed accessors whose errors name the dotted key path and
/// the line, and mappings that remember which keys were read so unknown keys can be refused
/// (a misspelt `lerning_rate` must not silently fall back to a default).
final class YAMLNode {
    let node: Node
    let path: String
    let file: String
    private var used = Set<String>()
    private var pairs: [(key: String, value: Node, line: Int?)] = []

    init(_ node: Node, path: String, file: String) throws(PipelineError) {
        self.node = node; self.path = path; self.file = file
        if case .mapping(let m) = node {
            var seen = Set<String>()
            for (k, v) in m {
                guard case .scalar(let s) = k else { throw PipelineError.config(file: file, key: path, line: k.mark?.line, reason: "keys must be plain text") }
                if !seen.insert(s.string).inserted {
                    throw PipelineError.config(file: file, key: join(s.string), line: k.mark?.line, reason: "appears twice")
                }
                pairs.append((s.string, v, k.mark?.line))
            }
        }
    }

    /// Parses a whole document; an empty document is an empty mapping.
    static func parse(_ text: String, file: String) throws(PipelineError) -> YAMLNode {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let e as YamlError {
            throw .config(file: file, key: "", line: Self.line(of: e), reason: "not valid YAML: \(Self.summary(e))")
        } catch { throw .config(file: file, key: "", line: nil, reason: "not valid YAML: \(error)") }
        let node = try YAMLNode(root ?? Node.mapping(Node.Mapping([])), path: "", file: file)
        guard node.isMapping else { throw node.error("the top level must be a mapping of keys (model:, datasets:, ...)") }
        return node
    }

    private static func line(of e: YamlError) -> Int? {
        switch e {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    private static func summary(_ e: YamlError) -> String {
        switch e {
        case .scanner(_, let p, _, _), .parser(_, let p, _, _), .composer(_, let p, _, _): return p
        default: return "\(e)"
        }
    }

    var line: Int? { node.mark?.line }
    /// The resolved YAML tag (`tag:yaml.org,2002:int`, ...).
    var tagName: String { node.tag.description }
    var isMapping: Bool { if case .mapping = node { return true }; return false }
    var isNull: Bool { if case .scalar = node, tagName == Tag.Name.null.rawValue { return true }; return false }

    func join(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ reason: String) -> PipelineError { .config(file: file, key: path, line: line, reason: reason) }

    /// The line of every key of this mapping and of the mappings under it, by dotted path
    /// (`training.layers` -> 14), for messages about settings checked after parsing.
    func keyLines() -> [String: Int] {
        var out: [String: Int] = [:]
        for p in pairs {
            if let l = p.line { out[join(p.key)] = l }
            if case .mapping = p.value, let child = try? YAMLNode(p.value, path: join(p.key), file: file) {
                out.merge(child.keyLines()) { a, _ in a }
            }
        }
        return out
    }

    /// The keys of a mapping, in file order.
    var keys: [String] { pairs.map(\.key) }

    /// The value under `key`, or nil when absent (an explicit `null` counts as absent).
    func optional(_ key: String) throws(PipelineError) -> YAMLNode? {
        used.insert(key)
        guard let p = pairs.first(where: { $0.key == key }) else { return nil }
        let n = try YAMLNode(p.value, path: join(key), file: file)
        return n.isNull ? nil : n
    }

    func required(_ key: String, _ hint: String) throws(PipelineError) -> YAMLNode {
        guard let n = try optional(key) else {
            throw PipelineError.config(file: file, key: join(key), line: line, reason: "missing; \(hint)")
        }
        return n
    }

    /// Refuses keys that no accessor asked for.
    func rejectUnknown() throws(PipelineError) {
        for p in pairs where !used.contains(p.key) {
            let known = used.sorted().joined(separator: ", ")
            throw PipelineError.config(file: file, key: join(p.key), line: p.line, reason: "unknown key; known keys here: \(known)")
        }
    }

    func mapping() throws(PipelineError) -> YAMLNode {
        guard isMapping else { throw error("expected a mapping (key: value lines), found \(kind)") }
        return self
    }

    /// Entries of a mapping as (key, node), all marked used.
    func entries() throws(PipelineError) -> [(String, YAMLNode)] {
        _ = try mapping()
        var out: [(String, YAMLNode)] = []
        for p in pairs {
            used.insert(p.key)
            out.append((p.key, try YAMLNode(p.value, path: join(p.key), file: file)))
        }
        return out
    }

    func list() throws(PipelineError) -> [YAMLNode] {
        guard case .sequence(let s) = node else { throw error("expected a list, found \(kind)") }
        var out: [YAMLNode] = []
        for (i, n) in s.enumerated() { out.append(try YAMLNode(n, path: "\(path)[\(i)]", file: file)) }
        return out
    }

    private var kind: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar where isNull: return "nothing (null)"
        case .scalar: return "\(tagName == Tag.Name.str.rawValue ? "text" : tagName.replacingOccurrences(of: "tag:yaml.org,2002:", with: "")) `\(node.string ?? "")`"
        }
    }

    /// A scalar's text as written, whatever YAML resolved it to: for choices whose words YAML
    /// 1.1 reads as booleans (`off`, `no`).
    func word() throws(PipelineError) -> String {
        guard case .scalar(let s) = node, !isNull else { throw error("expected a word, found \(kind)") }
        return s.string
    }

    func string() throws(PipelineError) -> String {
        guard case .scalar(let s) = node, tagName == Tag.Name.str.rawValue else { throw error("expected text, found \(kind)") }
        return s.string
    }

    /// An integer; a float that is a whole number (`1e3`) counts as one. Past Int's range it
    /// throws `tooLarge`, for callers to name their bound.
    func int(tooLarge: String? = nil) throws(PipelineError) -> Int {
        if tagName == Tag.Name.int.rawValue, let i = node.int { return i }
        if tagName == Tag.Name.float.rawValue, let d = node.float, d.isFinite, d == d.rounded() {
            if let i = Int(exactly: d) { return i }
            throw error(tooLarge ?? "is \(node.string ?? "\(d)"), far too large")
        }
        throw error("expected an integer, found \(kind)")
    }

    func double() throws(PipelineError) -> Double {
        guard tagName == Tag.Name.int.rawValue || tagName == Tag.Name.float.rawValue, let d = node.float, d.isFinite else {
            throw error("expected a number, found \(kind)")
        }
        return d
    }

    func bool() throws(PipelineError) -> Bool {
        guard tagName == Tag.Name.bool.rawValue, let b = node.bool else { throw error("expected true or false, found \(kind)") }
        return b
    }

    func strings() throws(PipelineError) -> [String] {
        if case .scalar = node, tagName == Tag.Name.str.rawValue { return [try string()] }
        var out: [String] = []
        for n in try list() { out.append(try n.string()) }
        return out
    }

    /// A number checked against a range; the message gives the range.
    func double(in range: ClosedRange<Double>, _ what: String = "") throws(PipelineError) -> Double {
        let d = try double()
        guard range.contains(d) else { throw error("must be \(what.isEmpty ? "in [\(range.lowerBound), \(range.upperBound)]" : what), got \(d)") }
        return d
    }

    func int(min: Int, _ what: String = "") throws(PipelineError) -> Int {
        let i = try int()
        guard i >= min else { throw error("must be \(what.isEmpty ? ">= \(min)" : what), got \(i)") }
        return i
    }

    /// An integer in `min...max`; the message gives the bound it broke.
    func int(min: Int, max: Int, _ what: String = "") throws(PipelineError) -> Int {
        let bound = "must be <= \(max)"
        let i = try int(tooLarge: "\(bound), got \(node.string ?? "")")
        guard i >= min else { throw error("must be \(what.isEmpty ? ">= \(min)" : what), got \(i)") }
        guard i <= max else { throw error("\(bound), got \(i)") }
        return i
    }
}
