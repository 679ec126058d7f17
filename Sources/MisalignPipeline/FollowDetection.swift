import Foundation
import MisalignIO

extension PipelineRunner {
    /// Feeds each aggregated checkpoint not yet fed, in step order, to the run's detectors
    /// (stopping at the first one not yet aggregated), stores the probe and any alarm, and acts
    /// on the first stop-signal alarm. `replay`: rebuilding the state at start, quietly.
    func feedDetectors(_ f: inout FollowedRun, settings: EarlyWarningSettings, replay: Bool) async throws {
        let r = f.run, judge = followJudge
        var means: [String: [Int: TraitAggregate]] = [:]
        for s in settings.signals {
            if let trait = ActivationSettings.trait(ofSignal: s) {
                // A projection signal: the response projection's mean at the vector's layer.
                guard let layer = try store.projectionLayer(trait: trait) else { continue }
                means[s] = Dictionary(try store.projectionAggregates(r, trait: trait, layer: layer).map {
                    ($0.step, TraitAggregate(trait: s, answers: $0.answers, scored: $0.projected, mean: $0.mean, ciLow: $0.ciLow, ciHigh: $0.ciHigh,
                                             fracAbove: nil, refusals: 0, unscorable: 0, excludedIncoherent: 0))
                }, uniquingKeysWith: { a, _ in a })
                continue
            }
            means[s] = Dictionary(try store.aggregates(r, judge: judge, trait: s).map { ($0.step, $0.aggregate) }, uniquingKeysWith: { a, _ in a })
        }
        let projected = settings.signals.contains { ActivationSettings.trait(ofSignal: $0) != nil }
        var fedNow = 0
        for ck in try store.checkpoints(r) where ck.step > f.fed {
            guard try store.isDone(stage: "aggregate", unit: "\(r)/step-\(ck.step)/\(judge)") else { break }
            if projected, try !store.isDone(stage: "aggregate", unit: "\(r)/step-\(ck.step)/\(ActivationSettings.suffix)") { break }
            let signals = settings.signals.map { s in
                let a = means[s]?[ck.step]
                return ProbeRecord.Signal(name: s, mean: a?.mean, scored: a?.scored ?? 0, answers: a?.answers ?? 0)
            }
            let probe = ProbeRecord(step: ck.step, fingerprint: "follow \(judge)", signals: signals, seconds: 0)
            var raised: [AlarmRecord] = []
            for s in signals {
                guard let mean = s.mean else { continue }
                for (detector, alarm) in f.detectors[s.name]!.feed(mean, step: ck.step) {
                    raised.append(AlarmRecord(step: ck.step, signal: s.name, detector: detector, statistic: alarm.statistic, changeStep: alarm.changeStep))
                }
            }
            try store.transaction {
                try store.putProbe(r, probe)
                for a in raised { try store.putAlarm(r, a) }
            }
            f.alarms += raised
            f.fed = ck.step
            fedNow += 1
            if !replay {
                note("follow \(r): step \(ck.step): " + signals.map { "\($0.name) " + ($0.mean.map { String(format: "%.1f", $0) } ?? "-") }.joined(separator: ", "))
                for a in raised {
                    note(String(format: "follow %@: ALARM step %d: %@ (%@, statistic %.3g, change from step %d)", "\(r)", a.step, a.signal, a.detector, a.statistic, a.changeStep))
                }
            }
        }
        if replay && fedNow > 0 { note("follow \(r): replayed \(fedNow) evaluated checkpoints (\(f.alarms.count) alarms)") }
        try await actOnAlarm(f, settings: settings)
    }

    /// On the run's first stop-signal alarm: records it, writes the stop file, runs the alarm
    /// command; each step recorded when done, so a resumed follow finishes what a kill
    /// interrupted and repeats nothing it recorded.
    func actOnAlarm(_ f: FollowedRun, settings: EarlyWarningSettings) async throws {
        let e = experiment, r = f.run
        var fired = try FollowAlarm.load(store, r)
        if fired == nil {
            guard let a = f.alarms.first(where: { settings.stopSignals.contains($0.signal) }) else { return }
            fired = FollowAlarm(run: r, alarm: a, time: ISO8601DateFormatter().string(from: Date()))
            try fired!.save(store)
        }
        guard var alarm = fired else { return }
        let stopURL = f.settings.stopURL(in: f.folder)
        if alarm.stopFile == nil {
            do {
                try FileManager.default.createDirectory(at: stopURL.deletingLastPathComponent(), withIntermediateDirectories: true)
                try AtomicFile.write(Data((alarm.stopJSON(checkpoints: f.folder, output: e.output).serialized() + "\n").utf8), to: stopURL)
            } catch {
                throw PipelineError.unwritable(path: stopURL.path, reason: "the stop file (external_checkpoints stop_file): \(error)")
            }
            alarm.stopFile = stopURL.path
            try alarm.save(store)
            note("follow \(r): alarm on \(alarm.alarm.signal) at step \(alarm.alarm.step) (\(alarm.alarm.detector)): wrote \(stopURL.path)")
        }
        if alarm.command == nil, let command = f.settings.onAlarmCommand {
            let log = e.output.appendingPathComponent("follow-\(r.dataset)-seed\(r.seed)-alarm-command.log")
            let outcome = await FollowAlarm.runCommand(command, env: alarm.environment(checkpoints: f.folder, stopFile: stopURL, output: e.output),
                                                 log: log, timeout: f.settings.onAlarmTimeout)
            alarm.command = outcome
            try alarm.save(store)
            note("follow \(r): on_alarm_command: \(outcome)")
        }
    }
}
