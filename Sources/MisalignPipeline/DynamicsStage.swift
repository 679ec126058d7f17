import Foundation
import MisalignChangePoint
import MisalignModel

/// The `dynamics` stage: each run's adapter checkpoints, in step order, through
/// `AdapterDynamicsTracker` (Docs/AdapterDynamics.md, "In the pipeline"). One unit per
/// checkpoint (`DATASET/seed-N/step-K`), committed with its values; a checkpoint without an
/// adapter (the base model, step 0; any folder without `adapter_config.json`) finishes its unit with nothing stored.
///
/// Resuming: a checkpoint's values depend on the two adapters before it (the tracker's
/// window), so the first unit left to do is preceded by re-feeding the tracker those two
/// adapters, whose results are dropped; finished units are never recomputed. An adapter that
/// does not read here (`LoRAError`: a layout this reader refuses) or does not compare with the
/// one before it (`AdapterDynamicsError`: another module set or shape) ends the run's series:
/// its unit and every later one finish with the reason as a failure (`misalign status` shows
/// it), nothing stored, and the other stages go on.
extension PipelineRunner {
    func dynamicsStage() throws -> Int {
        guard experiment.detection.adapterDynamics else { return 0 }
        var done = 0
        for r in experiment.runs { done += try adapterDynamics(r) }
        return done
    }

    static func dynamicsUnit(_ r: RunID, step: Int) -> String { "\(r)/step-\(step)" }

    /// Whether a checkpoint folder holds a PEFT adapter (`adapter_config.json`).
    static func holdsAdapter(_ path: String) -> Bool {
        !path.isEmpty && FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent("adapter_config.json").path)
    }

    /// The units of run `r` left to do; returns how many it finished.
    func adapterDynamics(_ r: RunID) throws -> Int {
        var done = 0
        var tracker: AdapterDynamicsTracker?   // started at the first unit left to do
        var before: [(step: Int, path: String)] = []  // adapter checkpoints already done, oldest first
        var stopped: String?                   // why the series ended, once an adapter did not compare
        for ck in try store.checkpoints(r) {
            let unit = Self.dynamicsUnit(r, step: ck.step)
            let isAdapter = Self.holdsAdapter(ck.path)
            if try store.isDone(stage: "dynamics", unit: unit) {
                guard isAdapter else { continue }
                if stopped == nil, let why = try store.unitFailure(stage: "dynamics", unit: unit) { stopped = why }
                // A finished unit after one left to do (not written by this code, but harmless):
                // the tracker still needs its adapter to stay in step.
                if tracker != nil, stopped == nil { do { _ = try feed(&tracker!, ck) } catch { tracker = nil } }  // the next unit re-feeds, or records why not
                before.append(ck)
                continue
            }
            try checkCancelled("dynamics")
            let t0 = Date()
            guard isAdapter else {
                try store.transaction { try store.finish(stage: "dynamics", unit: unit, items: 0, seconds: 0) }
                continue
            }
            if let stopped {
                try store.transaction {
                    try store.finish(stage: "dynamics", unit: unit, items: 0, seconds: 0, failure: "not computed: \(stopped)")
                }
                done += 1
                continue
            }
            var result: AdapterDynamics?
            do {
                if tracker == nil {
                    var fresh = AdapterDynamicsTracker()
                    for p in before.suffix(2) { _ = try feed(&fresh, p) }  // the window, as an unbroken series would hold it
                    tracker = fresh
                }
                result = try tracker!.append(try LoRAAdapter(directory: URL(fileURLWithPath: ck.path)), label: "step \(ck.step)")
            } catch {
                // An adapter that does not read here (a layout this reader refuses, though a
                // server may take it) or does not compare: the series ends, the run goes on.
                let why = "the adapter series of \(r) ends at step \(ck.step): \(error)"
                note("dynamics: \(why)")
                stopped = why
                try store.transaction {
                    try store.finish(stage: "dynamics", unit: unit, items: 0, seconds: Date().timeIntervalSince(t0), failure: why)
                }
            }
            if let d = result {
                try store.transaction {
                    try store.addAdapterDynamics(r, step: ck.step, d)
                    try store.finish(stage: "dynamics", unit: unit, items: 1, seconds: Date().timeIntervalSince(t0))
                }
            }
            before.append(ck)
            done += 1
            StageHooks.unitDone("dynamics")
        }
        return done
    }

    /// Appends a finished checkpoint's adapter to `tracker` (re-feeding its window).
    private func feed(_ tracker: inout AdapterDynamicsTracker, _ ck: (step: Int, path: String)) throws -> AdapterDynamics {
        try tracker.append(try LoRAAdapter(directory: URL(fileURLWithPath: ck.path)), label: "step \(ck.step)")
    }
}

/// Onsets of the adapter signals `detection.directions` names, for the detect stage.
extension PipelineRunner {
    /// Whether run `r`'s every checkpoint has its dynamics unit done (or the stage is off).
    func dynamicsComplete(_ r: RunID) throws(PipelineError) -> Bool {
        guard experiment.detection.adapterDynamics else { return true }
        for ck in try store.checkpoints(r) where try !store.isDone(stage: "dynamics", unit: Self.dynamicsUnit(r, step: ck.step)) {
            return false
        }
        return true
    }

    /// Every rule's onset on each named adapter signal of run `r`: point estimates, with no
    /// interval (one value per checkpoint: nothing to resample). Each curve is mapped onto
    /// `[0, detection.scale]` (its minimum to 0, its maximum to the scale) before the rules run,
    /// so their levels (threshold's value, ma-rise's min_rise, meanshift's min_shift) act as
    /// shares of the curve's range; a constant curve has no onset. A rule that needs more
    /// checkpoints than the curve has finds none. Signals with no values (a run without
    /// adapters) are left out.
    func adapterOnsets(_ r: RunID, config: OnsetConfig) throws -> [SignalOnset] {
        var out: [SignalOnset] = []
        let scale = experiment.detection.scale
        for (signal, direction) in experiment.detection.adapterSignals {
            let curve = try store.adapterSignal(r, signal)
            guard !curve.isEmpty else { continue }
            let steps = curve.map(\.step)
            let lo = curve.map(\.value).min()!, hi = curve.map(\.value).max()!
            var methods: [MethodOnset] = []
            for rule in config.rules {
                var index: Int? = nil
                if hi > lo {
                    let x = curve.map { scale * ($0.value - lo) / (hi - lo) }
                    do throws(ChangePointError) { index = try rule.onset(x, direction: direction, series: signal.rawValue) } catch {
                        guard case .tooShort = error else {
                            throw PipelineError.stage(stage: "detect", unit: "\(r)", reason: "\(signal.rawValue): \(error.description)")
                        }
                    }
                }
                methods.append(MethodOnset(method: rule.name, index: index, step: index.map { steps[$0] }))
            }
            let found = methods.compactMap(\.step)
            out.append(SignalOnset(signal: signal.rawValue, direction: direction, methods: methods,
                                   consensusStep: config.consensusStep(found.map(Double.init)),
                                   spread: found.isEmpty ? nil : (found.min()!, found.max()!), interval: nil))
        }
        return out
    }
}
