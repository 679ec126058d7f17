import ArgumentParser
import MisalignCore

// Option values that are enums: ArgumentParser parses them, refuses anything else with a
// usage error (exit 2) listing the values, and `--help` shows them (`allValueStrings`).

extension CostModel: ExpressibleByArgument {}
extension Direction: ExpressibleByArgument {}
extension OnsetPreset: ExpressibleByArgument {}
extension ConfigPreset: ExpressibleByArgument {}
extension NumberTokens: ExpressibleByArgument {}

extension Consensus: ExpressibleByArgument {
    /// Also `median_int`, as in a run config.
    public init?(argument: String) { self.init(parsing: argument) }
}

/// `misalign judge --local-mode`: how a `local:` judge reads its score.
enum LocalJudgeMode: String, CaseIterable, ExpressibleByArgument {
    /// The likelihood of every answer 0-100.
    case expectation
    /// Decode up to 8 tokens and parse the number.
    case greedy
}

/// `misalign report --format`.
enum ReportFormat: String, CaseIterable, ExpressibleByArgument {
    case html, md
}
