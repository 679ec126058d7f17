import Foundation

/// What makes two judges the same judge: kind, model and the server, with the server's URL in
/// one canonical spelling. `http://LOCALHOST:80/v1/` and `http://127.0.0.1/v1` are one server,
/// so changing one spelling for the other must neither re-ask every verdict (the verdict
/// cache key and the run store's judge names use this form) nor count as a new judge.
public enum JudgeIdentity {
    /// Hosts that name this machine's IPv4 loopback; written as `127.0.0.1`, the form the docs
    /// use, so the most common spelling keeps its identity. (`[::1]` stays apart: a server may
    /// listen on one family only, and the pipeline sends requests to a judge named this way.)
    static let loopback: Set<String> = ["localhost", "localhost.", "127.0.0.1"]

    /// The canonical spelling of a base URL: scheme and host lower-cased, `localhost` as
    /// `127.0.0.1`, the scheme's default port dropped, user and password dropped (never part
    /// of an identity, never printed), trailing slashes dropped. Path and query keep their case
    /// (servers may distinguish them). Text that is not an absolute URL is only trimmed.
    public static func canonicalURL(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard var c = URLComponents(string: trimmed), let scheme = c.scheme?.lowercased(), let host = c.host, !host.isEmpty else {
            return trimmed
        }
        c.scheme = scheme
        c.user = nil
        c.password = nil
        let h = host.lowercased()
        c.host = loopback.contains(h) ? "127.0.0.1" : h
        if let port = c.port, (scheme == "http" && port == 80) || (scheme == "https" && port == 443) { c.port = nil }
        var path = c.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        c.percentEncodedPath = path
        if c.percentEncodedQuery?.isEmpty == true { c.percentEncodedQuery = nil }
        c.fragment = nil
        return c.string ?? trimmed
    }

    /// How one base URL differs from another, part by part (`host localhost -> 10.0.0.2`,
    /// `port 8000 -> 8001`, `path /v1 -> /v2`), after canonicalisation; empty when they are
    /// the same server.
    public static func urlChanges(from old: String, to new: String) -> [String] {
        let a = canonicalURL(old), b = canonicalURL(new)
        guard a != b else { return [] }
        guard let ca = URLComponents(string: a), let cb = URLComponents(string: b), ca.host != nil, cb.host != nil else {
            return ["base URL \(a) -> \(b)"]
        }
        func port(_ c: URLComponents) -> String { c.port.map(String.init) ?? "default" }
        var out: [String] = []
        if ca.scheme != cb.scheme { out.append("scheme \(ca.scheme ?? "-") -> \(cb.scheme ?? "-")") }
        if ca.host != cb.host { out.append("host \(ca.host ?? "-") -> \(cb.host ?? "-")") }
        if ca.port != cb.port { out.append("port \(port(ca)) -> \(port(cb))") }
        if ca.percentEncodedPath != cb.percentEncodedPath {
            out.append("path \(ca.percentEncodedPath.isEmpty ? "/" : ca.percentEncodedPath) -> \(cb.percentEncodedPath.isEmpty ? "/" : cb.percentEncodedPath)")
        }
        if ca.percentEncodedQuery != cb.percentEncodedQuery { out.append("query \(ca.percentEncodedQuery ?? "-") -> \(cb.percentEncodedQuery ?? "-")") }
        return out
    }

    /// How one cache identity (`Judge.cacheIdentity`: `|`-separated fields) differs from
    /// another, field by field, URLs compared part by part: e.g. `model gpt-4.1 -> gpt-4.1-mini`,
    /// `host 127.0.0.1 -> 10.0.0.2`, `min_mass=0.25 -> min_mass=0.5`. Empty when equal.
    public static func changes(from old: String, to new: String) -> [String] {
        guard old != new else { return [] }
        let a = old.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard a.count == b.count, a.first == b.first else { return ["judge \(old) -> \(new)"] }
        var out: [String] = []
        for (i, (x, y)) in zip(a, b).enumerated() where x != y {
            if x.contains("://") || y.contains("://") {
                out += urlChanges(from: x, to: y)
            } else if i == 1 {
                out.append("model \(x) -> \(y)")
            } else {
                out.append("\(x.isEmpty ? "-" : x) -> \(y.isEmpty ? "-" : y)")
            }
        }
        return out
    }
}

extension JudgeSpec {
    /// `kind:model[@URL]` with the URL in its canonical spelling
    /// (`JudgeIdentity.canonicalURL`; a `local:` folder without trailing slashes; a custom
    /// scheme's text as written): the name a run store keeps this judge's verdicts under.
    public var canonicalName: String {
        // A custom spec is its factory's text: kept as written.
        if case .custom(let scheme) = kind { return "\(scheme):\(model)" }
        guard kind != .local else {
            // `models/judge/` and `models/judge` are one folder (the weights' fingerprint agrees).
            var path = model
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            return "local:\(path)"
        }
        return "\(kind.rawValue):\(model)" + (baseURL.map { "@" + JudgeIdentity.canonicalURL($0) } ?? "")
    }

    /// `canonicalName` of a judge spec's text; text that is not a spec is returned as it is
    /// (the caller's own check reports it).
    public static func canonicalName(_ text: String) -> String {
        (try? JudgeSpec(parsing: text))?.canonicalName ?? text
    }

    /// What differs between this judge and `old`, part by part (`model a -> b`,
    /// `host localhost -> 10.0.0.2`, `port 8000 -> 8001`); empty when they are one judge.
    public func changes(from old: JudgeSpec) -> [String] {
        var out: [String] = []
        if kind != old.kind { out.append("API \(old.kind.rawValue) -> \(kind.rawValue)") }
        if model != old.model { out.append("model \(old.model) -> \(model)") }
        switch (old.baseURL, baseURL) {
        case (nil, nil): break
        case (let a?, let b?): out += JudgeIdentity.urlChanges(from: a, to: b)
        case (let a?, nil): out.append("base URL \(JudgeIdentity.canonicalURL(a)) -> the API's default")
        case (nil, let b?): out.append("base URL the API's default -> \(JudgeIdentity.canonicalURL(b))")
        }
        return out
    }
}
