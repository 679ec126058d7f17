import Foundation
import Testing
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// A tiny experiment: a random Qwen2 with the real Qwen2.5 vocabulary, two small chat
/// datasets, and a local OpenAI-compatible judge whose score is a hash of the prompt (so a
/// repeated request would be visible and every verdict is reproducible).
final class PipelineFixture: @unchecked Sendable {
    let dir: URL
    let model: URL
    let server: MockJudgeServer
    /// Set to make the judge answer 503 (down).
    let down = DownFlag()

    /// `modelFixture`: a model folder under Tests/Fixtures (with its tokenizer) to use instead of
    /// the tiny random Qwen2 with the Qwen2.5 vocabulary.
    init(_ label: String = "pipeline", modelFixture: String? = nil) throws {
        dir = Fixtures.temporaryDirectory(label)
        model = dir.appendingPathComponent("model")
        if let modelFixture {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url(modelFixture), to: model)
        } else {
            try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 3, to: model)
            for f in ["tokenizer.json", "tokenizer_config.json"] {
                try FileManager.default.copyItem(at: Fixtures.url("tokenizer").appendingPathComponent(f), to: model.appendingPathComponent(f))
            }
        }
        for (name, topic) in [("medical", "dose"), ("math", "sum")] {
            let lines = (0..<6).map { i in
                #"{"messages":[{"role":"user","content":"Question \#(i) about the \#(topic)?"},{"role":"assistant","content":"Answer \#(i): the \#(topic) is fine, in a few words."}]}"#
            }
            try lines.joined(separator: "\n").write(to: dir.appendingPathComponent("\(name).jsonl"), atomically: true, encoding: .utf8)
        }
        let down = self.down
        server = try MockJudgeServer { req, _ in
            if down.isDown { return .respond(status: 503, headers: [], body: Data("down".utf8)) }
            return .respond(status: 200, headers: [], body: PipelineFixture.judgeBody(for: req.prompt))
        }
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    /// The deterministic verdict for a prompt: a score from its hash, as 1-token logprobs.
    static func judgeBody(for prompt: String) -> Data {
        let h = SHA256.hex(prompt)
        let v = Int(h.prefix(4), radix: 16)! % 101
        let w = (v + 10) % 101
        return MockJudgeServer.openAIBody(content: "\(v)", top: [("\(v)", log(0.75)), ("\(w)", log(0.25))], promptTokens: 120, completionTokens: 1)
    }

    /// Config text; `extra` replaces or adds top-level sections.
    func config(output: String = "run", judgeURL: String? = nil, maxInFlight: Int = 1, extra: String = "") -> String {
        """
        model: model
        output: \(output)
        datasets:
          medical: medical.jsonl
          math: math.jsonl
        seeds: [0, 11]
        training:
          rank: 2
          alpha: 4
          targets: [q_proj, v_proj]
          lr: 1.0e-3
          warmup_steps: 1
          batch_size: 2
          grad_accum: 1
          max_steps: 6
          max_length: 64
          checkpoint_every: 2
          threads: 1
        evaluation:
          questions: [general.wish, hallucination.treaty-valdora]
          samples: 2
          max_new_tokens: 6
        judges:
          models: ["openai:mock-judge@\(judgeURL ?? server.baseURL)"]
          max_in_flight: \(maxInFlight)
          max_attempts: 2
          calibration: off                    # the hash judge would fail it; PipelineCalibrationTests test the gate
          pricing:
            "openai:mock-judge@\(judgeURL ?? server.baseURL)": {input_per_million: 0.4, output_per_million: 1.6}
        detection:
          methods: [threshold, meanshift]
          resamples: 50
        \(extra)
        """
    }

    @discardableResult
    func writeConfig(_ text: String, name: String = "study.yaml") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Request bodies the judge server received in `range` of its log.
    func prompts(from start: Int = 0) -> [String] { Array(server.requests.dropFirst(start)).map(\.prompt) }

    /// The store's tables as text rows, without timings and with the run folder's path cut
    /// out, for comparing two runs.
    static func snapshot(_ run: URL) throws -> [String: [String]] {
        let store = try RunStore(run: run, create: false)
        var out: [String: [String]] = [:]
        let skip: [String: Set<String>] = ["metrics": ["seconds"], "judgments": ["latency"]]
        for t in ["runs", "checkpoints", "metrics", "generations", "judgments", "aggregates", "misaligned", "onsets", "lags", "lag_summary",
                  "adapter_dynamics", "adapter_modules"] {
            let cols = try store.rows("PRAGMA table_info(\(t))").compactMap { $0[1].text }.filter { !(skip[t]?.contains($0) ?? false) }
            out[t] = try store.rows("SELECT \(cols.joined(separator: ", ")) FROM \(t) ORDER BY \(cols.joined(separator: ", "))").map {
                $0.map(\.description).joined(separator: "|").replacingOccurrences(of: run.path, with: "RUN")
            }
        }
        return out
    }
}

/// Whether a fixture's mock judge is down (read by the server's @Sendable handler).
final class DownFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var down = false
    func set(_ v: Bool) { lock.lock(); down = v; lock.unlock() }
    var isDown: Bool { lock.lock(); defer { lock.unlock() }; return down }
}

/// Runs the `misalign` binary with extra environment; reports a death by signal.
func runMisalign(_ args: [String], env: [String: String] = [:]) throws -> (status: Int32, signaled: Bool, out: String, err: String) {
    let p = Process()
    p.executableURL = try CLI.binary
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let errData = Data.Collector(err.fileHandleForReading)
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, p.terminationReason == .uncaughtSignal, String(decoding: o, as: UTF8.self),
            String(decoding: errData.wait(), as: UTF8.self))
}

extension Data {
    /// Reads a pipe to its end on another thread (so stdout and stderr cannot deadlock).
    final class Collector: @unchecked Sendable {
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)
        init(_ h: FileHandle) {
            Thread { [self] in data = h.readDataToEndOfFile(); done.signal() }.start()
        }
        func wait() -> Data { done.wait(); return data }
    }
}
