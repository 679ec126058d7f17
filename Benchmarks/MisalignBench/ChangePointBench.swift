import Foundation
import MisalignCore
import MisalignTesting

/// `misalign-bench changepoint [--n 100000] [--ruptures-n 2000] [--no-ruptures] [--resamples 2000]`
///
/// 1. PELT (l2, BIC penalty, min_size 2, jump 1) on a 100,000-point piecewise-constant series
///    (a mean shift every ~1,000 points in N(0, 1) noise).
/// 2. The same search on the first `ruptures-n` points, in Swift and in ruptures (a python3
///    subprocess, timed inside python), with the ratio and whether the breakpoints agree.
///    ruptures' PELT is roughly quadratic here (247 s at 10,000 points on the dev machine), so
///    it only runs on the small series.
/// 3. The full onset analysis: 3 signals x 200 checkpoints x 40 questions x 20 samples,
///    every onset rule, consensus, lag, and a 2,000-resample cluster bootstrap.
func runChangePointBenchmark(_ args: [String]) throws {
    func option(_ name: String, _ def: Int) -> Int {
        if let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
        return def
    }
    let n = option("--n", 100_000), smallN = option("--ruptures-n", 2_000), resamples = option("--resamples", 2_000)
    let runRuptures = !args.contains("--no-ruptures")

    var rng = SplitMix64(seed: 2026)
    var level = 0.0
    let x: [Double] = (0..<n).map { i in
        if i % 1000 == 0 && i > 0 { level = Double(rng.below(7)) - 3 }
        return level + rng.normal()
    }

    func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try body()
        return (r, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }

    print("== changepoint benchmark (release build, \(ProcessInfo.processInfo.activeProcessorCount) cores)")
    let pen = Penalty.bic(x, model: .l2)
    let (big, tBig) = try time { try Pelt(model: .l2, penalty: pen, minSize: 2, jump: 1).detect(x, name: "bench") }
    print(String(format: "PELT l2 n=%d: %.3f s, %d change points (pen %.2f)", n, tBig, big.breakpoints.count - 1, pen))

    let small = Array(x.prefix(smallN))
    let penSmall = Penalty.bic(small, model: .l2)
    var tSmall = Double.infinity
    var smallSeg: Segmentation? = nil
    for _ in 0..<5 {   // best of 5: the small run is short enough for timer noise to matter
        let (s, t) = try time { try Pelt(model: .l2, penalty: penSmall, minSize: 2, jump: 1).detect(small, name: "bench-small") }
        tSmall = min(tSmall, t); smallSeg = s
    }
    print(String(format: "PELT l2 n=%d: %.5f s, %d change points", smallN, tSmall, smallSeg!.breakpoints.count - 1))

    if runRuptures {
        if let (tr, bk) = try rupturesPelt(small, pen: penSmall) {
            print(String(format: "ruptures 1.1.10 Pelt(l2, min_size=2, jump=1) n=%d: %.3f s -> Swift is %.0fx faster; breakpoints %@",
                         smallN, tr, tr / tSmall, bk == smallSeg!.breakpoints ? "identical" : "differ (ours \(smallSeg!.breakpoints.count - 1), ruptures \(bk.count - 1) change points)"))
        } else {
            print("ruptures: python3 with ruptures not available, comparison skipped")
        }
    }

    let study = SyntheticStudy.study(hallucinationMidpoint: 180, lag: 40, checkpoints: 200, questions: 40, samples: 20)
    let (records, tGen) = time { study.generate(seed: 1) }
    let config = OnsetConfig(resamples: resamples, seed: 1)
    let (reports, tAnalysis) = try time { try OnsetAnalysis.analyze(records: records, config: config) }
    let r = reports[0]
    print(String(format: "onset analysis, %d answers (3 signals x 200 checkpoints x 40 questions x 20 samples), %d resamples: %.2f s (data generation %.2f s, not counted)",
                 records.count, resamples, tAnalysis, tGen))
    if let lag = r.lagSteps, let iv = r.lagInterval {
        print(String(format: "  planted lag 40 steps: estimated %.1f, 95%% CI [%.1f, %.1f], P(lag > 0) = %.3f", lag, iv.low, iv.high, r.probabilityLagPositive ?? .nan))
    }
}

/// Runs ruptures' PELT in a python3 subprocess on `x`; returns (seconds inside python,
/// breakpoints), or nil when python3 or ruptures is missing.
func rupturesPelt(_ x: [Double], pen: Double) throws -> (Double, [Int])? {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cp-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("x.json")
    try JSONValue.array(x.map { .double($0) }).serialized().write(to: input, atomically: true, encoding: .utf8)
    let script = """
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    try:
        import numpy as np, ruptures as rpt
    except ImportError:
        sys.exit(3)
    x = np.array(json.load(open(sys.argv[1])))
    t = time.perf_counter()
    b = rpt.Pelt(model="l2", min_size=2, jump=1).fit(x).predict(pen=float(sys.argv[2]))
    print(json.dumps({"seconds": time.perf_counter() - t, "bkps": b}))
    """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script, input.path, String(pen)]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let v = try? JSONValue.parse(data),
          let s = v["seconds"]?.doubleValue, let b = v["bkps"]?.arrayValue?.compactMap(\.intValue) else { return nil }
    return (s, b)
}
