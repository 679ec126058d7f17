import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The run folder's writer lock: an exclusive `flock` on `OUTPUT/run.lock`, held while one
/// `misalign run` works on the folder. The OS drops it when the process ends in any way
/// (`kill -9` included), so a stale lock cannot exist; the file itself stays and says who last
/// held it. A second writer is refused naming the holder (pid, host, start time); readers
/// (`status`, `report`, `inspect`) never take it.
public final class RunLock: Sendable {
    public static let fileName = "run.lock"
    /// The locked file's descriptor; -1 once released.
    private let fd: Mutex<Int32>

    /// Takes the lock of `run` (an existing folder) or throws `.locked` naming its holder.
    public init(run: URL) throws(PipelineError) {
        let path = run.appendingPathComponent(Self.fileName).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .unwritable(path: path, reason: String(cString: strerror(errno))) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            let err = errno
            var holder = "holder unknown"
            if err == EWOULDBLOCK, let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty { holder = t }
            }
            close(fd)
            if err == EWOULDBLOCK { throw .locked(run: run.path, holder: holder) }
            throw .unwritable(path: path, reason: "cannot lock: \(String(cString: strerror(err)))")
        }
        // Held: say who holds it (the file is read by a refused second writer, never trusted
        // for the lock itself).
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let started = ISO8601DateFormatter().string(from: Date())
        let text = "pid \(getpid()) on \(String(cString: host)), started \(started)\n"
        ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = Mutex(fd)
    }

    /// Releases the lock (also done by `deinit` and by the OS at exit).
    public func release() {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}
