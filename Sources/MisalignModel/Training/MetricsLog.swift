import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MisalignIO

/// `metrics.jsonl` of a run: one JSON line per optimizer step, each appended with a single
/// `write` on an O_APPEND descriptor and fsynced, so a crash leaves whole lines only.
public final class MetricsLog {
    public let url: URL
    private let fd: Int32

    /// Opens the log; when resuming at `step`, lines of later steps (from the interrupted run,
    /// which the resumed run will redo) are dropped first, atomically.
    public init(url: URL, resumingAt step: Int) throws {
        self.url = url
        if let data = try? Data(contentsOf: url) {
            let keep = data.split(separator: UInt8(ascii: "\n")).filter { line in
                guard let v = try? JSONValue.parse(Data(line)), let s = v["step"]?.intValue else { return false }
                return s <= step
            }
            var out = Data()
            for line in keep { out.append(contentsOf: line); out.append(UInt8(ascii: "\n")) }
            if out != data { try AtomicFile.write(out, to: url) }
        }
        fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.cannotWrite(path: url.path, reason: String(cString: strerror(errno))) }
    }

    deinit { close(fd) }

    public func append(_ m: StepMetrics) throws {
        let line = Data((m.jsonLine + "\n").utf8)
        try line.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
        fsync(fd)
    }
}
