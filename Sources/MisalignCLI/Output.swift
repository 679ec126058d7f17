import ArgumentParser
import Foundation
import Synchronization
import MisalignCore
import MisalignTesting

/// `--quiet` and `--json`, shared by the commands that print results. The convention every
/// command follows: the result goes to stdout (a table, or one JSON document with `--json`);
/// progress and notes go to stderr; `--quiet` silences stderr except for errors.
struct OutputOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "No progress or notes on stderr (errors are still printed).")
    var quiet = false

    @Flag(help: "Print the result as JSON on stdout instead of a table.")
    var json = false

    /// Progress display mode for this invocation.
    var progressMode: ProgressBar.Mode { ProgressBar.mode(quiet: quiet) }

    /// A note for the user on stderr, unless `--quiet`.
    func note(_ text: String) { if !quiet { Console.writeError(text + "\n") } }
}

/// Raw writes to the standard streams (unbuffered, so they interleave correctly with a bar).
enum Console {
    static func writeError(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

/// An error the CLI prints as `Error: <message>` with exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The command did what it could but left work a rerun can finish (verdicts that failed,
/// stages not run); exit status 3. Finished work is kept.
struct IncompleteError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Stopped by Ctrl-C after letting work in flight commit (commands that catch SIGINT
/// themselves, such as `misalign run`); exit status 130, like the default handler's.
struct InterruptedError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The exit statuses every command uses; scripts may rely on them (Docs/CLI.md).
enum ExitStatus {
    /// Success.
    static let ok: Int32 = 0
    /// A runtime or data error: unreadable or invalid file, network or API failure, model error.
    static let failure: Int32 = 1
    /// A usage error: unknown flag, bad value, missing or conflicting arguments (before any work).
    static let usage: Int32 = 2
    /// Partial result: finished work is kept; rerunning the same command finishes the rest.
    static let incomplete: Int32 = 3
    /// Interrupted by Ctrl-C (SIGINT), as shells report it (128 + 2).
    static let interrupted: Int32 = 130

    /// The status for an error thrown by parsing, `validate()` or `run()`. ArgumentParser's
    /// own usage errors (its `EX_USAGE`, 64) are folded into `usage` so there is one code for
    /// "you called it wrong" whichever layer noticed.
    static func code(for error: Error) -> Int32 {
        if error is IncompleteError { return incomplete }
        if error is InterruptedError { return interrupted }
        if error is CLIError { return failure }
        let code = Misalign.exitCode(for: error)
        if code == .validationFailure { return usage }
        return code.rawValue
    }
}

/// Ctrl-C: end an open progress line, say so, exit 130. Files written so far are whole
/// (every write is atomic) and resumable commands continue where they stopped.
enum Interrupt {
    /// A progress bar is drawn without its newline (set by `ProgressBar`). Atomic, so the
    /// signal handler may read it (a lock could be held by the thread it interrupted).
    static let lineOpen = Atomic<Bool>(false)

    static func install() {
        // A parent may start us with signals blocked (Foundation's `Process` on Linux blocks
        // nearly all of them in the child), which would make Ctrl-C and `kill` do nothing.
        // Unblock them here, on the main thread, before any worker thread inherits the mask.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGHUP)
        sigprocmask(SIG_UNBLOCK, &unblock, nil)
        signal(SIGINT) { _ in
            // Only async-signal-safe calls here: write(2) and _exit(2).
            if Interrupt.lineOpen.load(ordering: .relaxed) { _ = write(STDERR_FILENO, "\n", 1) }
            let message: StaticString = "misalign: interrupted; finished work is kept, rerun the same command to continue\n"
            _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
            _exit(130)
        }
    }
}

extension Misalign {
    /// Parses, runs, and maps any error to one message and one documented exit status.
    static func main() {
        Interrupt.install()
        // The kill-and-resume tests' crash hook (`MISALIGN_TEST_KILL_AT`; inert when unset).
        CrashPoint.installFromEnvironment()
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            fail(error, command: SettingFlags.command(in: CommandLine.arguments))
        }
        let name = type(of: command).configuration.commandName
        do {
            try command.run()
        } catch let error as ValidationError {
            // A bad flag combination noticed inside run(): name the subcommand, not the root.
            let prefix = name.map { $0 == "misalign" ? "misalign" : "misalign \($0)" } ?? "misalign"
            let message = SettingFlags.translate(error.message, command: name)
            Console.writeError("Error: \(message)\n  See '\(prefix) --help' for more information.\n")
            Foundation.exit(ExitStatus.usage)
        } catch {
            fail(error, command: name)
        }
    }

    /// ArgumentParser's message for `error` (help text for --help), on stdout for success and
    /// stderr otherwise (the library's setting names turned into `command`'s flags:
    /// `SettingFlags`), then the mapped exit status.
    private static func fail(_ error: Error, command: String?) -> Never {
        let status = ExitStatus.code(for: error)
        let message = fullMessage(for: error)
        if status == ExitStatus.ok {
            if !message.isEmpty { print(message) }   // --help, --version
        } else if !message.isEmpty {
            Console.writeError(SettingFlags.translate(message, command: command) + "\n")
        }
        Foundation.exit(status)
    }
}
