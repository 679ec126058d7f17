import Foundation
import MisalignHTTP
import MisalignJudge

extension PipelineRunner {
    /// One judge call and the stored answers it scores (identical answers share one call).
    private struct Call: Sendable {
        var judge: Int
        var item: JudgeItem
        var key: String
        var answers: [StoredGeneration]
    }

    /// Judges every answer that lacks a verdict, cache first. Verdicts are stored as they
    /// arrive, each in its own commit; answers with the same text share one call, and the
    /// verdict cache (the store's own file unless `judges.cache` names another) means a verdict
    /// paid for is never paid for again, even across runs. Failed calls store nothing: after
    /// the stage the run stops with `judgeUnavailable`, and the next run retries only those.
    func judgeStage() async throws -> Int {
        let e = experiment, js = e.judges
        let rubrics = try js.resolvedRubrics()
        let questionText = Dictionary(uniqueKeysWithValues: e.evaluation.questions.map { ($0.id, $0.text) })
        let names = judgeNames
        var pending: [(Int, String, [StoredGeneration])] = []
        for (j, name) in names.enumerated() {
            for t in js.traits {
                // A trait with questions of its own is asked only about their answers.
                let todo = try store.unjudged(judge: name, trait: t, questions: js.questionIDs(for: t))
                if !todo.isEmpty { pending.append((j, t, todo)) }
            }
        }
        let total = pending.reduce(0) { $0 + $1.2.count }
        let factory = judgeFactory()
        factory.notice = { [self] in note("judge: \($0)") }
        // Before any answer is judged: the calibration gate (CalibrationGate.swift).
        let calibrated = try await calibrationGate(factory: factory) { () throws -> [any Judge] in try makeJudges(factory, remaining: total) }
        guard total > 0 else { return 0 }
        let judges = try calibrated ?? makeJudges(factory, remaining: total)
        let cache = try VerdictCache(path: js.cache ?? store.url)
        var calls: [Call] = []
        var index: [String: Int] = [:]
        for (j, trait, todo) in pending {
            guard let rubric = rubrics[trait] else { throw JudgeError.invalidInput("no rubric for trait `\(trait)`") }
            for g in todo {
                let item = JudgeItem(rubric: rubric, question: questionText[g.questionID] ?? g.questionID, answer: g.text)
                let key = VerdictCache.key(judge: judges[j], item: item)
                if let i = index[key] { calls[i].answers.append(g) } else {
                    index[key] = calls.count
                    calls.append(Call(judge: j, item: item, key: key, answers: [g]))
                }
            }
        }
        note("judge: \(total) verdicts in \(calls.count) distinct calls (\(names.joined(separator: ", ")))")
        var done = 0, failures = 0, consecutiveFailures = 0
        var fatal: PipelineError?
        var lastError = ""
        var commitSeconds = 0.0
        let t0 = Date()
        let limit = js.maxInFlight
        await withTaskGroup(of: (Int, Result<(Verdict, Bool), JudgeError>).self) { group in
            var next = 0
            func launch() {
                guard next < calls.count else { return }
                let c = calls[next], i = next, judge = judges[c.judge]
                next += 1
                group.addTask {
                    do throws(JudgeError) {
                        if let hit = try cache.get(c.key) { return (i, .success((hit, true))) }
                        let v = try await judge.judge(c.item)
                        try cache.put(c.key, v)
                        return (i, .success((v, false)))
                    } catch { return (i, .failure(error)) }
                }
            }
            for _ in 0..<min(limit, calls.count) { launch() }
            for await (i, result) in group {
                switch result {
                case .success(let (v, cached)):
                    consecutiveFailures = 0
                    let commitStart = Date()
                    defer { commitSeconds += Date().timeIntervalSince(commitStart) }
                    do {
                        try store.transaction {
                            for (k, g) in calls[i].answers.enumerated() {
                                // The first answer carries the call; its twins are cache hits.
                                try store.addJudgment(g, judge: names[calls[i].judge], v, cached: cached || k > 0)
                            }
                        }
                    } catch {
                        // The store cannot take writes (a full disk, a damaged file): no
                        // further call can be kept, so stop sending and report that.
                        fatal = fatal ?? (error as? PipelineError) ?? .store(path: store.url.path, reason: "\(error)")
                        failures += calls[i].answers.count
                        continue
                    }
                    done += calls[i].answers.count
                    progress(.stage(name: "judge", done: done, total: total))
                    StageHooks.unitDone("judge")
                case .failure(let err):
                    if case .cache(let path, let reason) = err {
                        // The verdict cache is a file on this machine, not the judge: a write
                        // that failed there is the disk's problem.
                        fatal = fatal ?? (reason.contains("disk is full") ? .unwritable(path: path, reason: "the disk is full")
                                                                          : .store(path: path, reason: "verdict cache: \(reason)"))
                    }
                    failures += calls[i].answers.count
                    consecutiveFailures += 1
                    lastError = err.description
                }
                // A judge that fails every call in a row is down: stop sending (in-flight
                // calls finish) instead of retrying thousands of calls against it.
                if fatal != nil || consecutiveFailures >= max(limit, 3) || isCancelledNow() { continue }
                launch()
            }
        }
        // HTTP time: the stage's wall time less the commits made while calls were out.
        addWork(Date().timeIntervalSince(t0) - commitSeconds)
        if let fatal { throw fatal }
        try store.finish(stage: "judge", unit: "session-\(UUID().uuidString)", items: done, seconds: Date().timeIntervalSince(t0))
        try checkCancelled("judge")
        if done < total {
            throw PipelineError.judgeUnavailable(judge: names.joined(separator: ", "), reason: redact(lastError, secrets: factory.secrets),
                                                 done: try store.count("judgments"), remaining: total - done)
        }
        return done
    }

    /// The configured judges (unless `configuredJudges` is off), then the components' own.
    private func makeJudges(_ factory: JudgeFactory, remaining: Int) throws -> [any Judge] {
        var judges: [any Judge] = []
        for spec in components.configuredJudges ? experiment.judges.judges : [] {
            do { judges.append(try factory.make(spec)) } catch {
                let name: String = if case .custom = spec.kind { spec.canonicalName } else { spec.model }
                throw PipelineError.judgeUnavailable(judge: name, reason: redact(error.description, secrets: factory.secrets),
                                                     done: 0, remaining: remaining)
            }
        }
        return judges + components.judges
    }

    func isCancelledNow() -> Bool { (try? checkCancelled("judge")) == nil }
}
