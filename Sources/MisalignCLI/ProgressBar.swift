import Foundation
import Synchronization
import MisalignCore

/// A progress display on stderr, chosen once per command:
/// - on a terminal, a bar with count, rate and ETA redrawn in place at most 10 times a second;
/// - when stderr is a file or pipe (CI logs, `2> log`), one plain line every `lineInterval`
///   seconds and a last one at the end, so logs stay readable and small;
/// - with `--quiet`, nothing.
/// Safe to update from several threads (judge tasks report as they finish).
final class ProgressBar: Sendable {
    enum Mode { case bar, lines, silent }

    let mode: Mode
    private struct State {
        var meter: ProgressMeter
        var finished = false
        /// `done` of the last plain line written (lines mode), so `finish` does not repeat it.
        var printedDone = -1
        /// The bar is on screen (bar mode), with this detail.
        var drawn = false
        var lastDetail = ""
    }
    private let state: Mutex<State>

    /// `lineInterval`: seconds between plain log lines (non-terminal mode).
    init(label: String, total: Int, mode: Mode, lineInterval: Double = 10) {
        self.mode = mode
        state = Mutex(State(meter: ProgressMeter(label: label, total: total, start: Self.now(),
                                                 redrawInterval: mode == .bar ? 0.1 : lineInterval, showFirst: mode == .bar)))
    }

    /// The mode for stderr as it is now: bar on a terminal, lines otherwise, silent when quiet.
    static func mode(quiet: Bool) -> Mode {
        quiet ? .silent : (isatty(STDERR_FILENO) == 1 ? .bar : .lines)
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Records `done` units (and a new total, if it changed); redraws when due.
    func update(_ done: Int, total: Int? = nil, detail: String = "") {
        guard mode != .silent else { return }
        let mode = self.mode
        state.withLock { s in
            guard !s.finished else { return }
            let t = Self.now()
            guard s.meter.update(done: done, total: total, now: t) else { return }
            switch mode {
            case .bar:
                Console.writeError("\r\u{1B}[K" + s.meter.bar(now: t, detail: detail))
                Interrupt.lineOpen.store(true, ordering: .relaxed)
                s.drawn = true
                s.lastDetail = detail
            case .lines:
                Console.writeError(s.meter.line(now: t, detail: detail) + "\n")
                s.printedDone = done
            case .silent: break
            }
        }
    }

    /// A line of news (a wait on a rate limit...) above the bar, which is redrawn below it;
    /// a plain line in lines mode; nothing when silent.
    func note(_ text: String) {
        guard mode != .silent else { return }
        let mode = self.mode
        state.withLock { s in
            switch mode {
            case .bar:
                let redraw = s.drawn && !s.finished ? s.meter.bar(now: Self.now(), detail: s.lastDetail) : ""
                Console.writeError("\r\u{1B}[K" + text + "\n" + redraw)
            case .lines, .silent:
                Console.writeError(text + "\n")
            }
        }
    }

    /// Ends the display: a terminal bar gets its newline, a line log its final line if the
    /// last update was throttled away.
    func finish(detail: String = "") {
        guard mode != .silent else { return }
        let mode = self.mode
        state.withLock { s in
            guard !s.finished else { return }
            s.finished = true
            let t = Self.now()
            switch mode {
            case .bar:
                Console.writeError("\r\u{1B}[K" + s.meter.bar(now: t, detail: detail) + "\n")
            case .lines:
                if s.printedDone != s.meter.done || !detail.isEmpty { Console.writeError(s.meter.line(now: t, detail: detail) + "\n") }
            case .silent: break
            }
            Interrupt.lineOpen.store(false, ordering: .relaxed)
        }
    }
}
