import Foundation
import MisalignIO

/// One probe: the per-signal means of the judged answers at a step.
public struct ProbeRecord: Sendable, Equatable {
    public struct Signal: Sendable, Equatable {
        public var name: String
        /// Mean score of the answers the judge scored; nil when none was (every verdict a
        /// refusal or unparseable), and then the detectors skip this probe.
        public var mean: Double?
        public var scored: Int
        public var answers: Int
    }
    public var step: Int
    public var fingerprint: String
    public var signals: [Signal]
    /// Seconds the probe took (generation and judging).
    public var seconds: Double

    public func mean(_ signal: String) -> Double? { signals.first { $0.name == signal }?.mean ?? nil }

    func json() -> JSONValue {
        .object(JSONObject([
            ("step", .int(Int64(step))), ("fingerprint", .string(fingerprint)),
            ("signals", .array(signals.map { s in
                .object(JSONObject([("name", .string(s.name)), ("mean", s.mean.map { .double($0) } ?? .null),
                                    ("scored", .int(Int64(s.scored))), ("answers", .int(Int64(s.answers)))]))
            })),
            ("seconds", .double(seconds)),
        ]))
    }

    init(step: Int, fingerprint: String, signals: [Signal], seconds: Double) {
        self.step = step; self.fingerprint = fingerprint; self.signals = signals; self.seconds = seconds
    }

    init?(json v: JSONValue) {
        guard let step = v["step"]?.intValue, let fp = v["fingerprint"]?.stringValue, let list = v["signals"]?.arrayValue else { return nil }
        var signals: [Signal] = []
        for s in list {
            guard let name = s["name"]?.stringValue, let scored = s["scored"]?.intValue, let answers = s["answers"]?.intValue,
                  let mean = s["mean"], mean.isNull || mean.doubleValue != nil else { return nil }
            signals.append(Signal(name: name, mean: mean.doubleValue, scored: scored, answers: answers))
        }
        self.init(step: step, fingerprint: fp, signals: signals, seconds: v["seconds"]?.doubleValue ?? 0)
    }
}

/// The first alarm of one detector on one signal.
public struct AlarmRecord: Sendable, Equatable {
    /// The step whose probe raised it.
    public var step: Int
    public var signal: String
    /// `cusum` or `bocpd`.
    public var detector: String
    /// CUSUM's sum, or BOCPD's posterior probability of a short run.
    public var statistic: Double
    /// The detector's estimate of the step where the change began.
    public var changeStep: Int

    public init(step: Int, signal: String, detector: String, statistic: Double, changeStep: Int) {
        self.step = step; self.signal = signal; self.detector = detector; self.statistic = statistic; self.changeStep = changeStep
    }

    func json() -> JSONValue {
        .object(JSONObject([
            ("step", .int(Int64(step))), ("signal", .string(signal)), ("detector", .string(detector)),
            ("statistic", .double(statistic)), ("change_step", .int(Int64(changeStep))),
        ]))
    }

    init?(json v: JSONValue) {
        guard let step = v["step"]?.intValue, let signal = v["signal"]?.stringValue, let detector = v["detector"]?.stringValue,
              let statistic = v["statistic"]?.doubleValue, let change = v["change_step"]?.intValue else { return nil }
        self.init(step: step, signal: signal, detector: detector, statistic: statistic, changeStep: change)
    }
}

/// The monitor's files in a run directory: `early-warning/probes.jsonl` (one line per probe)
/// and `early-warning/alarms.jsonl` (one line per first alarm). Both are small and rewritten
/// whole through `AtomicFile` after every probe, so a kill leaves the previous complete file.
public struct EarlyWarningLog: Sendable {
    public let directory: URL
    public var probesURL: URL { directory.appendingPathComponent("probes.jsonl") }
    public var alarmsURL: URL { directory.appendingPathComponent("alarms.jsonl") }

    public init(run: URL) throws(EarlyWarningError) {
        directory = run.appendingPathComponent("early-warning")
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw .cannotWrite(path: directory.path, reason: error.localizedDescription)
        }
    }

    public func readProbes() throws(EarlyWarningError) -> [ProbeRecord] {
        try Self.lines(probesURL).map { (n, v) throws(EarlyWarningError) -> ProbeRecord in
            guard let r = ProbeRecord(json: v) else { throw .badRecord(path: probesURL.path, line: n, detail: "not a probe record") }
            return r
        }
    }

    public func readAlarms() throws(EarlyWarningError) -> [AlarmRecord] {
        try Self.lines(alarmsURL).map { (n, v) throws(EarlyWarningError) -> AlarmRecord in
            guard let r = AlarmRecord(json: v) else { throw .badRecord(path: alarmsURL.path, line: n, detail: "not an alarm record") }
            return r
        }
    }

    func write(probes: [ProbeRecord], alarms: [AlarmRecord]) throws(EarlyWarningError) {
        for (url, lines) in [(probesURL, probes.map { $0.json() }), (alarmsURL, alarms.map { $0.json() })] {
            do { try AtomicFile.write(Data(lines.map { $0.serialized() + "\n" }.joined().utf8), to: url) } catch {
                throw .cannotWrite(path: url.path, reason: "\(error)")
            }
        }
    }

    private static func lines(_ url: URL) throws(EarlyWarningError) -> [(Int, JSONValue)] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        var out: [(Int, JSONValue)] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.isEmpty {
            do { out.append((i + 1, try JSONValue.parse(String(line)))) } catch {
                throw .badRecord(path: url.path, line: i + 1, detail: "not JSON (\(error.description))")
            }
        }
        return out
    }
}
