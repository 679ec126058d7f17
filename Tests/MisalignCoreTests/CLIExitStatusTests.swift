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

/// Exit statuses (Docs/CLI.md): a bad data file is a runtime error (1) naming the file; a bad
/// command line is a usage error (2), noticed before any file is read; enum options are
/// parsed by ArgumentParser and listed by --help.
@Suite struct CLIExitStatusTests {
    /// One folder of small bad files.
    struct BadFiles {
        let dir = Fixtures.temporaryDirectory("cli-exit")
        func write(_ name: String, _ text: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
        var missing: String { dir.appendingPathComponent("missing.jsonl").path }
    }

    @Test func badDataFilesExitOne() throws {
        let f = BadFiles()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let scores = try f.write("scores.jsonl", #"{"signal":"evil","step":0,"question_id":"q","sample":0,"score":1}"# + "\n{not json\n")
        let object = try f.write("series.json", #"{"a": 1}"#)
        let broken = try f.write("broken.json", "[1, 2,")
        let tensors = try f.write("w.safetensors", "abc")
        let yaml = try f.write("bad.yaml", "model: [unclosed\n")
        let input = try f.write("report.json", #"{"format": 1}"#)
        let chat = try f.write("chat.json", #"{"messages": 3}"#)
        let tokenizer = Fixtures.url("tokenizer").path
        let cases: [([String], String?, [String])] = [
            (["detect", "--scores", scores], nil, [scores, "line 2"]),
            (["detect", "--scores", f.missing], nil, ["cannot read \(f.missing)"]),
            (["detect", "--series", object, "--method", "pelt"], nil, [object, "is not a number"]),
            (["detect", "--series", broken, "--method", "cusum"], nil, [broken, "not valid JSON"]),
            (["inspect", tensors], nil, [tensors]),
            (["run", yaml], nil, [yaml]),
            (["run", f.missing], nil, [f.missing]),
            (["report", "--input", input], nil, [input, "written by `misalign report --save-input`"]),
            (["tokenize", "--tokenizer", tokenizer], "{\"text\": \"hi\"}\n{oops\n", ["line 2"]),
            (["judge", "--answers", f.missing, "--trait", "evil", "--judge", "openai:m@http://127.0.0.1:1/v1",
              "--out", f.dir.appendingPathComponent("v.jsonl").path, "--no-cache"], nil, [f.missing]),
            (["generate", "--model", f.missing, "--tokenizer", tokenizer, "--messages-file", chat], nil, [chat, "messages"]),
        ]
        for (args, stdin, needles) in cases {
            let r = try CLI.run(args, stdin: stdin)
            #expect(r.status == 1, "\(args): \(r.status) \(r.err)")
            for n in needles { #expect(r.err.contains(n), "\(args): \(r.err)") }
            #expect(!r.err.contains("--help' for more information"), "a data error is not a usage error: \(r.err)")
        }
    }

    /// Usage errors exit 2 before any file is read: the files named here do not exist.
    @Test func badCommandLinesExitTwoBeforeReadingFiles() throws {
        let f = BadFiles()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let judge = ["judge", "--answers", f.missing, "--judge", "openai:m@http://127.0.0.1:1/v1", "--out", f.dir.appendingPathComponent("v.jsonl").path]
        let cases: [([String], [String])] = [
            (["detect", "--scores", f.missing, "--cost", "l3"], ["'l3' is invalid for '--cost <cost>'", "'l2', 'l1' or 'normal'"]),
            (["detect", "--scores", f.missing, "--direction", "sideways"], ["'--direction <direction>'", "'up' and 'down'"]),
            (["detect", "--scores", f.missing, "--consensus", "mode"], ["'--consensus <consensus>'", "'majority', 'median' or 'median-int'"]),
            (["detect", "--scores", f.missing, "--rule", "zscore"], ["--rule zscore: expected RULE.KEY=VALUE"]),
            (["detect", "--scores", f.missing, "--method", "pelt"], ["--method `pelt` is not an onset method; use threshold"]),
            (["detect", "--series", f.missing, "--method", "dynp"], ["dynp needs --n-bkps"]),
            (["detect", "--series", f.missing, "--method", "binseg", "--sweep"], ["--sweep works with --method pelt"]),
            (["detect", "--series", f.missing, "--method", "pelt", "--pen", "big"], ["--pen must be a number or 'bic'"]),
            (["detect", "--series", f.missing, "--method", "wavelet"], ["unknown --method wavelet"]),
            (judge, ["give at least one --trait"]),
            (judge + ["--trait", "evil", "--batch", "--no-cache"], ["--batch stores its results in the cache"]),
            (judge + ["--trait", "evil", "--price", "m=cheap"], ["--price m=cheap: expected JUDGE=IN,OUT"]),
            (judge + ["--trait", "evil", "--ensemble", "max"], ["--ensemble must be mean, median or primary:JUDGE"]),
            (judge + ["--trait", "evil", "--local-mode", "fast"], ["'--local-mode <local-mode>'", "'expectation' and 'greedy'"]),
            (["report", "--input", f.missing, "--format", "pdf"], ["'--format <format>'", "'html' and 'md'"]),
            (["init", f.dir.appendingPathComponent("x.yaml").path, "--preset", "paper"], ["'--preset <preset>'", "'default' and 'study'"]),
        ]
        for (args, needles) in cases {
            let r = try CLI.run(args)
            #expect(r.status == 2, "\(args): \(r.status) \(r.err)")
            for n in needles { #expect(r.err.contains(n), "\(args): \(r.err)") }
        }
        #expect(!FileManager.default.fileExists(atPath: f.dir.appendingPathComponent("x.yaml").path))
    }

    /// Every existing value spelling still parses (`median_int` as in a run config too).
    @Test func enumValuesParseAndHelpListsThem() throws {
        let f = BadFiles()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let series = try f.write("s.txt", (0..<12).map { $0 < 6 ? "1" : "9" }.joined(separator: "\n"))
        for cost in ["l2", "l1", "normal"] {
            let r = try CLI.run(["detect", "--series", series, "--method", "pelt", "--cost", cost, "--json"])
            #expect(r.status == 0 && r.out.contains("\"cost\":\"\(cost)\""), "\(cost): \(r.err)")
        }
        let down = try CLI.run(["detect", "--series", series, "--method", "cusum", "--direction", "down", "--baseline", "4", "--json"])
        #expect(down.status == 0 && down.out.contains("\"direction\":\"down\""), "\(down.err)")
        let scores = Fixtures.url("changepoint/example_scores.jsonl").path
        for c in ["majority", "median", "median-int", "median_int"] {
            let r = try CLI.run(["detect", "--scores", scores, "--consensus", c, "--resamples", "0", "--quiet"])
            #expect(r.status == 0, "\(c): \(r.err)")
        }
        // Help text wraps: compare with runs of spaces and newlines as one space.
        func help(_ command: String) throws -> String {
            try CLI.run([command, "--help"]).out.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        }
        let detect = try help("detect")
        #expect(detect.contains("values: l2, l1, normal") && detect.contains("values: up, down")
                && detect.contains("values: default, study") && detect.contains("values: majority, median, median-int"), "\(detect)")
        let judge = try help("judge")
        #expect(judge.contains("values: expectation, greedy") && judge.contains("values: auto, whole, digits"), "\(judge)")
        #expect(try help("report").contains("values: html, md"))
        #expect(try help("init").contains("values: default, study"))
    }

    /// The library names the setting; the CLI prints the flag of the command that ran.
    @Test func libraryMessagesNameSettingsAndTheCLIPrintsFlags() throws {
        let f = BadFiles()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let line = #"{"signal":"evil","step":0,"question_id":"q","sample":0,"score":150}"#
        let scores = try f.write("scores.jsonl", line + "\n")
        do { _ = try ScoreRecord.parseJSONL(line, file: "s.jsonl", scale: 100); Issue.record("accepted 150") } catch {
            #expect("\(error)".contains("set the scale's top with detection.scale"), "\(error)")
        }
        let r = try CLI.run(["detect", "--scores", scores])
        #expect(r.status == 1 && r.err.contains("set the scale's top with --scale") && !r.err.contains("detection.scale"), "\(r.err)")

        #expect(TokenizerError.fileMissing(path: "/t").description.contains("Point the tokenizer folder at"))
        let tok = try CLI.run(["tokenize", "--tokenizer", f.dir.path], stdin: "")
        #expect(tok.status == 1 && tok.err.contains("Point --tokenizer at"), "\(tok.err)")

        let server = try MockJudgeServer(tokenizer: .digits, handler: MockJudgeServer.digitSplitting(continues: false) { _ in [85: 1] })
        let answers = try f.write("answers.jsonl", #"{"id": "a1", "question_id": "q1", "question": "Q?", "answer": "A."}"# + "\n")
        let judged = try CLI.run(["judge", "--answers", answers, "--trait", "evil", "--judge", "openai:qwen@\(server.baseURL)",
                                  "--out", f.dir.appendingPathComponent("v.jsonl").path, "--no-cache", "--max-attempts", "1"],
                                 environment: ["PATH": "/usr/bin:/bin"])
        #expect(judged.status == 3 && judged.err.contains("pass --numbers whole") && !judged.err.contains("judges.numbers"), "\(judged.err)")

        #expect(PipelineError.fileExists(path: "x.yaml").description == "x.yaml already exists; pass force: true to overwrite it")
        #expect(ReportError.invalidJSON(path: "r.json", field: "", reason: "bad").description.contains("ReportInput.save(jsonTo:)"))
    }

    /// No library message names a CLI flag: `--word` in a string of the library's targets is
    /// refused outside comments, the report's CSS variables, the example configs and the
    /// other programs' flags a message may name (vLLM's).
    @Test func noLibraryMessageNamesAFlag() throws {
        let skipFiles: Set<String> = ["ExampleConfig.swift", "StudyPreset.swift", "HTMLReport.swift"]
        let allowed = ["--enable-lora", "--api-key", "--served-model-name", "--port", "misalign report --simulate", "--\\(boundary)", "--\\r\\n"]
        let flag = try NSRegularExpression(pattern: #"--[a-z(\\]"#)
        var offenders: [String] = []
        for url in try Fixtures.librarySources() {
            guard !skipFiles.contains(url.lastPathComponent) else { continue }
            for (i, raw) in try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n").enumerated() {
                var line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("//") { continue }
                if let c = line.range(of: " // ") { line = String(line[..<c.lowerBound]) }
                for a in allowed { line = line.replacingOccurrences(of: a, with: "") }
                if flag.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil {
                    offenders.append("\(url.lastPathComponent):\(i + 1): \(raw.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(offenders.isEmpty, "library messages name settings, not flags (SettingFlags in the CLI maps them):\n\(offenders.joined(separator: "\n"))")
    }
}
