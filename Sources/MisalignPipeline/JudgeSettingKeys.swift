import Foundation
import MisalignHTTP
import MisalignIO
import MisalignJudge
import MisalignModel

/// How judges are asked, as settings: an experiment's `judges:` section and `misalign judge`'s
/// flags (`--max-in-flight`, `--min-mass`, `--numbers`, `--judge-seed`, ...) read through this
/// one table. Which judges, traits, rubrics, cache and prices are the section's structure
/// (`models`, `traits`, `rubrics`, `cache`, `pricing`), read beside it.
extension JudgeSettings: SettingGroup {
    public static var section: String { "judges" }

    /// Every judging setting. Those that change a verdict are part of each judge's cache
    /// identity (`SettingEffect.verdicts`); the rest change only speed and patience.
    public static var keys: [SettingKey<JudgeSettings>] {
        typealias Key = SettingKey<JudgeSettings>
        let b = Experiment.Bounds.self
        return [
            Key.intSetting("max-in-flight", \.maxInFlight, 1...b.inFlight, effect: .none),
            Key.doubleSetting("timeout", \.timeout, in: 0...86400, lowerOpen: true, note: " (seconds)", effect: .none),
            Key.intSetting("max-attempts", \.maxAttempts, 1...b.attempts, effect: .none),
            Key.doubleSetting("min-numeric-mass", \.minNumericMass, aliases: ["min-mass"], in: 0...1, effect: .verdicts),
            Key.choiceSetting("numbers", \.numbers, NumberTokens.allCases.map { ($0.rawValue, $0) }, show: \.rawValue, effect: .verdicts),
            Key(name: "seed", aliases: ["judge-seed"], expected: "a non-negative integer (or null: none sent)", effect: .verdicts,
                read: { o, e throws(SettingProblem) in o.seed = e.value == .null ? nil : try Key.integer(e, max: b.seed) },
                check: { $0.seed.flatMap { Key.inRange($0, 0...b.seed) } },
                record: { $0.seed.map(String.init) ?? "none" }),
            Key(name: "local-mode", expected: "expectation or greedy", effect: .verdicts,
                read: { o, e throws(SettingProblem) in
                    switch e.value {
                    case .text("expectation"): o.localMode = .expectation
                    case .text("greedy"): o.localMode = .greedy(maxTokens: 8)
                    default: throw SettingProblem(detail: "expected expectation or greedy, found \(e.shown)")
                    }
                },
                record: { $0.localMode == .expectation ? "expectation" : "greedy" }),
            Key.choiceSetting("local-precision", \.localPrecision, ComputePrecision.allCases.map { ($0.rawValue, $0) }, show: \.rawValue,
                              effect: .verdicts),
        ]
    }
}

extension JudgeSettings {
    /// A factory of the built-in judges with these settings: concurrency, attempts and timeout
    /// for its clients, and the settings that change verdicts (`SettingEffect.verdicts`).
    /// `limits` defaults to `maxInFlight` requests in flight per endpoint.
    public func judgeFactory(transport: any HTTPTransport = CurlTransport(), limits: RateLimits? = nil,
                             keyVariables: [JudgeSpec.Kind: String] = [.openai: "OPENAI_API_KEY", .anthropic: "ANTHROPIC_API_KEY"]) -> JudgeFactory {
        let factory = JudgeFactory(transport: transport, limits: limits ?? RateLimits(maxInFlight: maxInFlight),
                                   policy: RetryPolicy(maxAttempts: maxAttempts), timeout: timeout, keyVariables: keyVariables)
        factory.localMode = localMode
        factory.localPrecision = localPrecision
        factory.minNumericMass = minNumericMass
        factory.numbers = numbers
        factory.seed = seed
        return factory
    }
}
