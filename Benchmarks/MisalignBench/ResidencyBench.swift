import Foundation
import MisalignCore

/// Decoding from weights mapped from the file against weights read into huge pages
/// (`FileResidency`): both models loaded side by side, single-sample decoding steps taken from
/// each in turn, so the host's drifting memory bandwidth falls on both alike.
func runResidencyBenchmark(_ args: [String]) throws {
    let steps = Int(option(args, "--steps") ?? "64") ?? 64
    let precision = option(args, "--precision").flatMap(ComputePrecision.init(rawValue:)) ?? .f32
    print("\n== residency: single-sample decoding, weights mapped vs read into huge pages, steps alternating (\(steps) each)")
    var table = Table("weights", "load mapped s", "load huge s", "mapped tok/s", "huge tok/s", "huge / mapped", "faster in")
    for (label, dir) in try benchModelFolders(args) {
        var models: [Qwen2Model] = [], loads: [Double] = []
        for r in [FileResidency.mapped, .hugePages] {
            let t0 = now()
            let m = try Qwen2Model(directory: dir, residency: r)
            m.computePrecision = precision
            models.append(m)
            loads.append(now() - t0)
        }
        var rng = SplitMix64(seed: 9)
        let prompt = (0..<32).map { _ in Int32(rng.below(models[0].config.vocabSize)) }
        let decodings = try models.map { try GreedyDecode($0, prompt: prompt, steps: steps) }
        var times: [[Double]] = [[], []]
        for i in 0..<(2 * steps) {
            let which = (i + i / 2) % 2 // mapped, huge, huge, mapped, mapped, huge, ...: neither always goes first
            let t0 = now()
            try decodings[which].step()
            times[which].append(now() - t0)
        }
        let median = times.map { $0.sorted()[$0.count / 2] }
        let wins = zip(times[0], times[1]).filter { $1 < $0 }.count
        table.rows.append([label + (precision == .bf16 ? " (bf16 dot)" : ""), fmt(loads[0], 2), fmt(loads[1], 2), fmt(1 / median[0], 2),
                           fmt(1 / median[1], 2), fmt(median[0] / median[1], 3) + "x", "\(wins) of \(steps) pairs"])
    }
    table.print()
    print("tok/s from the median step; a pair is the i-th step of each. Huge pages need THP 'always' or 'madvise' (\(thpSetting())).")
}

/// The kernel's transparent-huge-page setting, e.g. `madvise`.
func thpSetting() -> String {
    guard let s = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8),
          let open = s.firstIndex(of: "["), let close = s.firstIndex(of: "]") else { return "unknown" }
    return String(s[s.index(after: open)..<close])
}
