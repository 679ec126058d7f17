import ArgumentParser

/// Library messages name settings as the library and run configs spell them
/// (`detection.methods`, `judges.timeout`, a training setting in backticks such as `` `lr` ``,
/// a parameter such as `initAdapter`); a command's user sets them with flags. This is the one
/// table from those names to each command's flags, applied by the one error printer
/// (`Misalign.main` and `Misalign.fail` in Output.swift) to every error it prints, so CLI users read
/// the flag and embedders read the setting. `misalign run` reads a config: nothing is translated.
enum SettingFlags {
    struct Entry {
        /// As the library message spells it.
        let setting: String
        /// What the command's user types instead.
        let flag: String
        /// The subcommands whose flag it is.
        let commands: Set<String>
    }

    /// `misalign train`'s flags that are training settings (and its `--config` keys): the
    /// library names them in backticks when it advises changing one.
    static let trainingSettings = [
        "rank", "alpha", "rslora", "dropout", "targets", "layers", "lr", "schedule", "warmup-steps", "weight-decay",
        "max-grad-norm", "batch-size", "grad-accum", "epochs", "max-steps", "max-length", "seed", "save-every",
        "holdout", "holdout-every", "adapter-dtype", "precision", "data",
    ]

    static let table: [Entry] = [
        Entry(setting: "detection.methods", flag: "--method", commands: ["detect"]),
        Entry(setting: "detection.scale", flag: "--scale", commands: ["detect"]),
        Entry(setting: "judges.timeout", flag: "--timeout", commands: ["judge"]),
        Entry(setting: "judges.max_in_flight", flag: "--max-in-flight", commands: ["judge"]),
        Entry(setting: "the requests-per-minute budget (RateLimits.requestsPerMinute)", flag: "--rpm", commands: ["judge"]),
        Entry(setting: "set judges.numbers: whole", flag: "pass --numbers whole", commands: ["judge"]),
        Entry(setting: "pass force: true", flag: "pass --force", commands: ["init"]),
        Entry(setting: "generation.path_map (LOCAL: SERVER)", flag: "--adapter-path-map LOCAL=SERVER", commands: ["generate"]),
        Entry(setting: "generation.served_model", flag: "--served-model", commands: ["generate"]),
        Entry(setting: "applies to backend: vllm only", flag: "applies with --server only", commands: ["generate"]),
        Entry(setting: "applies to backend: local only (the server picks its own)", flag: "applies without --server only (the server picks its own)", commands: ["generate"]),
        Entry(setting: "applies to backend: local only", flag: "applies without --server only", commands: ["generate"]),
        Entry(setting: "the tokenizer folder", flag: "--tokenizer", commands: ["tokenize", "generate", "train"]),
        Entry(setting: "monitor.every_k", flag: "--monitor-every", commands: ["train"]),
        Entry(setting: "monitor.questions", flag: "--monitor-questions", commands: ["train"]),
        Entry(setting: "monitor.samples", flag: "--monitor-samples", commands: ["train"]),
        Entry(setting: "monitor.max_new_tokens", flag: "--monitor-max-new-tokens", commands: ["train"]),
        Entry(setting: "monitor.baseline", flag: "--monitor-baseline", commands: ["train"]),
        Entry(setting: "monitor.stop_signals", flag: "--monitor-stop-signals", commands: ["train"]),
        Entry(setting: "monitor.*", flag: "--monitor-*", commands: ["train"]),
        Entry(setting: "max_new_tokens", flag: "--max-new-tokens", commands: ["generate"]),
        Entry(setting: "max_new_tokens", flag: "--monitor-max-new-tokens", commands: ["train"]),
        Entry(setting: "the initial adapter (initAdapter)", flag: "the --init-adapter adapter", commands: ["train"]),
        Entry(setting: "unless keepAllOptimizerStates is set", flag: "unless --keep-optimizer-states", commands: ["train"]),
        Entry(setting: "set skipInvalid", flag: "pass --skip-invalid", commands: ["train"]),
        Entry(setting: "another run folder", flag: "another --out folder", commands: ["train"]),
        Entry(setting: "a new run folder", flag: "a new --out folder", commands: ["train"]),
        Entry(setting: "saved by ReportInput.save(jsonTo:)", flag: "written by `misalign report --save-input`", commands: ["report"]),
        Entry(setting: "ReportInput.load(jsonAt:)", flag: "`misalign report --input report.json`", commands: ["report"]),
    ] + trainingSettings.map { Entry(setting: "`\($0)`", flag: "--\($0)", commands: ["train"]) }

    /// `message` with every setting of `command`'s entries replaced by its flag. A name is
    /// replaced only as a whole word (`max_new_tokens` inside `monitor.max_new_tokens` or
    /// `evaluation.max_new_tokens` is not), earlier entries first.
    static func translate(_ message: String, command: String?) -> String {
        guard let command else { return message }
        var text = message
        for entry in table where entry.commands.contains(command) {
            text = replacingWholeWords(entry.setting, with: entry.flag, in: text)
        }
        return text
    }

    private static func isWordCharacter(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" }

    private static func replacingWholeWords(_ word: String, with replacement: String, in text: String) -> String {
        var out = "", rest = text[...]
        while let r = rest.range(of: word) {
            let before = r.lowerBound > rest.startIndex ? rest[rest.index(before: r.lowerBound)] : (out.last ?? " ")
            let after = r.upperBound < rest.endIndex ? rest[r.upperBound] : " "
            let bounded = !(isWordCharacter(word.first!) && isWordCharacter(before)) && !(isWordCharacter(word.last!) && (after.isLetter || after.isNumber || after == "_"))
            out += rest[..<r.lowerBound] + (bounded ? replacement : word)
            rest = rest[r.upperBound...]
        }
        return out + rest
    }

    /// The subcommand named on the command line (for errors thrown while parsing, before a
    /// command exists), or nil.
    static func command(in arguments: [String]) -> String? {
        let names = Set(Misalign.configuration.subcommands.compactMap { $0.configuration.commandName })
        return arguments.dropFirst().first.flatMap { names.contains($0) ? $0 : nil }
    }
}
