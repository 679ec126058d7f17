import Foundation
import MisalignHTTP
#if canImport(Glibc)
import Glibc
#endif
import MisalignIO

/// Price of a judge's tokens, in currency units per million tokens.
public struct JudgePricing: Sendable, Equatable {
    public var inputPerMillion: Double
    public var outputPerMillion: Double
    public init(inputPerMillion: Double, outputPerMillion: Double) {
        self.inputPerMillion = inputPerMillion; self.outputPerMillion = outputPerMillion
    }
}

/// Calls and tokens one judge cost in a run. Cached verdicts cost nothing and are counted apart.
public struct JudgeUsage: Sendable, Equatable {
    public var judge: String
    public var fresh = 0
    public var cached = 0
    public var resumed = 0
    public var errors = 0
    public var attempts = 0
    public var inputTokens = 0
    public var outputTokens = 0
    /// nil without pricing for this judge.
    public var cost: Double?
}

/// One output row: a verdict (or error) for one (answer, trait, judge).
public struct JudgeRow: Sendable {
    public var answerID: String
    public var questionID: String
    public var trait: String
    public var judge: String
    public var verdict: Verdict
    public var cached: Bool

    public func json() -> JSONValue {
        var o: [(String, JSONValue)] = [
            ("answer_id", .string(answerID)), ("question_id", .string(questionID)),
            ("trait", .string(trait)), ("judge", .string(judge)),
        ]
        if let vo = verdict.json().objectValue {
            for (k, v) in vo.pairs where k != "judge" && k != "trait" { o.append((k, v)) }
        }
        o.append(("cached", .bool(cached)))
        return .object(JSONObject(o))
    }

    package init(answerID: String, questionID: String, trait: String, judge: String, verdict: Verdict, cached: Bool) {
        self.answerID = answerID; self.questionID = questionID; self.trait = trait; self.judge = judge
        self.verdict = verdict; self.cached = cached
    }

    init(json v: JSONValue) throws(JudgeError) {
        guard let a = v["answer_id"]?.stringValue, let q = v["question_id"]?.stringValue,
              let t = v["trait"]?.stringValue, let j = v["judge"]?.stringValue, var o = v.objectValue else {
            throw .invalidInput("row lacks answer_id, question_id, trait or judge")
        }
        o["judge"] = .string(j); o["trait"] = .string(t)
        self.init(answerID: a, questionID: q, trait: t, judge: j, verdict: try Verdict(json: .object(o)), cached: v["cached"]?.boolValue ?? false)
    }
}

/// Progress of a run, for a status line.
public struct JudgeProgress: Sendable {
    public var done: Int
    public var total: Int
    public var cached: Int
    public var errors: Int
}

/// Judges every (answer, trait, judge), with the cache in front of the judges and the output
/// written resumably: rows are appended to `OUT.partial` as they complete, a rerun after a
/// crash skips the rows found there (errors excepted), and the finished file is written
/// atomically in a stable order (answers, then traits, then judges, as given).
public final class JudgeRunner: Sendable {
    public let judges: [any Judge]
    public let rubrics: [Rubric]
    public let cache: VerdictCache?
    public let maxInFlight: Int
    public let pricing: [String: JudgePricing]
    /// Scrubbed from every row (error details, raw answers) as a last line of defence.
    let secrets: [String]

    public init(judges: [any Judge], rubrics: [Rubric], cache: VerdictCache?, maxInFlight: Int = 64,
                pricing: [String: JudgePricing] = [:], secrets: [String] = []) {
        self.judges = judges; self.rubrics = rubrics; self.cache = cache; self.maxInFlight = max(1, maxInFlight)
        self.pricing = pricing; self.secrets = secrets
    }

    public struct Summary: Sendable {
        /// Rows in output order.
        public var rows: [JudgeRow]
        /// Per judge id, in the order of `judges`.
        public var usage: [JudgeUsage]
    }

    public func run(answers: [AnswerRecord], output: URL?, progress: (@Sendable (JudgeProgress) -> Void)? = nil) async throws(JudgeError) -> Summary {
        struct Task_ { var a: Int; var t: Int; var j: Int }
        let partialURL = output.map { URL(fileURLWithPath: $0.path + ".partial") }
        var resumed: [String: JudgeRow] = [:]
        if let partialURL { resumed = try Self.readPartial(partialURL) }
        func rowKey(_ a: String, _ t: String, _ j: String) -> String { JSONValue.array([.string(a), .string(t), .string(j)]).serialized() }

        var slots = [[[JudgeRow?]]](repeating: [[JudgeRow?]](repeating: [JudgeRow?](repeating: nil, count: judges.count), count: rubrics.count), count: answers.count)
        var usage = judges.map { JudgeUsage(judge: $0.id) }
        var todo: [Task_] = []
        for (a, ans) in answers.enumerated() {
            for (t, r) in rubrics.enumerated() {
                for (j, judge) in judges.enumerated() {
                    if let row = resumed[rowKey(ans.id, r.name, judge.id)], row.verdict.rubricHash == r.sha256 {
                        slots[a][t][j] = row; usage[j].resumed += 1
                    } else {
                        todo.append(Task_(a: a, t: t, j: j))
                    }
                }
            }
        }
        // Rewrite the partial file with just the valid rows (drops a torn last line), then append.
        var fd: Int32 = -1
        if let partialURL {
            var text = ""
            for plane in slots { for line in plane { for row in line { if let row { text += row.json().serialized() + "\n" } } } }
            do { try AtomicFile.write(Data(text.utf8), to: partialURL) } catch {
                throw .invalidInput("cannot write \(partialURL.path): \(error)")
            }
            fd = open(partialURL.path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw .invalidInput("cannot open \(partialURL.path): \(String(cString: strerror(errno)))") }
        }
        defer { if fd >= 0 { close(fd) } }

        let total = answers.count * rubrics.count * judges.count
        var done = total - todo.count, cachedCount = 0, errorCount = 0
        progress?(JudgeProgress(done: done, total: total, cached: 0, errors: 0))
        let judges = self.judges, rubrics = self.rubrics, cache = self.cache, secrets = self.secrets

        await withTaskGroup(of: (Task_, JudgeRow).self) { group in
            var next = 0
            func launch() {
                guard next < todo.count else { return }
                let task = todo[next]; next += 1
                let ans = answers[task.a], rubric = rubrics[task.t], judge = judges[task.j]
                group.addTask { () -> (Task_, JudgeRow) in
                    let item = JudgeItem(rubric: rubric, question: ans.question, answer: ans.answer)
                    let key = VerdictCache.key(judge: judge, item: item)
                    func row(_ v: Verdict, cached: Bool) -> JudgeRow {
                        JudgeRow(answerID: ans.id, questionID: ans.questionID, trait: rubric.name, judge: judge.id, verdict: v, cached: cached)
                    }
                    do throws(JudgeError) {
                        if let cache, let hit = try cache.get(key) { return (task, row(hit, cached: true)) }
                        let v = try await judge.judge(item)
                        try cache?.put(key, v, identity: judge.cacheIdentity)
                        return (task, row(v, cached: false))
                    } catch {
                        let failed = Verdict(judge: judge.id, trait: rubric.name, score: nil, status: .error,
                                             detail: redact(error.description, secrets: secrets), rubricHash: rubric.sha256,
                                             attempts: Self.attempts(error))
                        return (task, row(failed, cached: false))
                    }
                }
            }
            for _ in 0..<min(maxInFlight, todo.count) { launch() }
            for await (task, var row) in group {
                row.verdict.raw = redact(row.verdict.raw, secrets: secrets)
                slots[task.a][task.t][task.j] = row
                var u = usage[task.j]
                if row.cached { u.cached += 1; cachedCount += 1 }
                else if row.verdict.status == .error { u.errors += 1; errorCount += 1; u.attempts += row.verdict.attempts }
                else { u.fresh += 1; u.attempts += row.verdict.attempts; u.inputTokens += row.verdict.inputTokens; u.outputTokens += row.verdict.outputTokens }
                usage[task.j] = u
                if fd >= 0 {
                    let line = Array((row.json().serialized() + "\n").utf8)
                    try? line.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: partialURL!.path) }
                }
                done += 1
                progress?(JudgeProgress(done: done, total: total, cached: cachedCount, errors: errorCount))
                launch()
            }
        }
        for j in usage.indices {
            if let p = pricing[usage[j].judge] {
                usage[j].cost = (Double(usage[j].inputTokens) * p.inputPerMillion + Double(usage[j].outputTokens) * p.outputPerMillion) / 1e6
            }
        }
        let rows = slots.flatMap { $0.flatMap { $0.compactMap { $0 } } }
        if let output {
            let text = rows.map { $0.json().serialized() + "\n" }.joined()
            do { try AtomicFile.write(Data(text.utf8), to: output) } catch {
                throw .invalidInput("cannot write \(output.path): \(error)")
            }
            if errorCount == 0, let partialURL { try? FileManager.default.removeItem(at: partialURL) }
        }
        return Summary(rows: rows, usage: usage)
    }

    /// One line per judge whose verdicts the cache holds only under other settings (another
    /// server, model parameters...): none of them will be reused, and the line says exactly
    /// what differs, so a changed URL is not mistaken for a cache that does not work.
    public func identityNotes() throws(JudgeError) -> [String] {
        guard let cache else { return [] }
        var notes: [String] = []
        for judge in judges {
            let stored = try cache.identities(judge: judge.id)
            guard !stored.contains(where: { $0.identity == judge.cacheIdentity }), let other = stored.first else { continue }
            let what = JudgeIdentity.changes(from: other.identity, to: judge.cacheIdentity).joined(separator: ", ")
            notes.append("judge \(judge.id): the cache holds \(other.count) verdicts of this judge with other settings (\(what)); "
                         + "they are not reused, since another server or settings may score differently (use the old settings to reuse them)")
        }
        return notes
    }

    static func attempts(_ e: JudgeError) -> Int {
        if case .retriesExhausted(let n, _) = e { return n }
        if case .circuitOpen = e { return 0 }
        return 1
    }

    /// Rows already written by an interrupted run, keyed by (answer, trait, judge). Error rows
    /// and a torn last line are dropped so they are redone.
    static func readPartial(_ url: URL) throws(JudgeError) -> [String: JudgeRow] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [:] }
        var out: [String: JudgeRow] = [:]
        for (_, line) in JSONLines.lines(data).lines {
            guard let v = try? JSONValue.parse(line), let row = try? JudgeRow(json: v), row.verdict.status != .error else { continue }
            out[JSONValue.array([.string(row.answerID), .string(row.trait), .string(row.judge)]).serialized()] = row
        }
        return out
    }
}
