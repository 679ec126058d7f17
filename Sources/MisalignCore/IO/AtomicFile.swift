import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files so that a reader, or a restart after `kill -9` or a power cut, sees either the
/// old file or the complete new one, never a torn one: write a temporary file in the same
/// folder, fsync it, rename it over the target (atomic on POSIX), then fsync the folder so the
/// rename itself is durable.
public enum AtomicFile {
    /// Test hook: when set, called with the temporary path before the rename; throwing from it
    /// simulates a crash mid-write (the temporary file is removed, the target untouched).
    /// Process-wide, so a test should throw only for paths inside its own folder.
    public static var beforeRenameHook: ((String) throws -> Void)? {
        get { hookLock.lock(); defer { hookLock.unlock() }; return hook }
        set { hookLock.lock(); hook = newValue; hookLock.unlock() }
    }
    private static let hookLock = NSLock()
    nonisolated(unsafe) private static var hook: ((String) throws -> Void)?

    /// Writes `data` to `url` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { fd in
            try data.withUnsafeBytes { try writeAll(fd: fd, $0, path: url.path) }
        }
    }

    /// Writes the file by calling `body` with an open descriptor of the temporary file.
    /// `body` writes the content (use `writeAll`); everything else is handled here.
    public static func write(to url: URL, _ body: (Int32) throws -> Void) throws {
        let dir = url.deletingLastPathComponent().path
        let tmp = "\(dir)/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.cannotWrite(path: url.path, reason: String(cString: strerror(errno))) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try body(fd)
            guard fsync(fd) == 0 else { throw FileError.cannotWrite(path: url.path, reason: "fsync: \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        if let hook = beforeRenameHook {
            try hook(tmp)
        }
        guard rename(tmp, url.path) == 0 else {
            throw FileError.cannotWrite(path: url.path, reason: "rename: \(String(cString: strerror(errno)))")
        }
        ok = true
        syncDirectory(dir)
    }

    /// Writes every byte of `bytes`, retrying short writes and EINTR.
    public static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// fsync of a folder, so a rename or create inside it survives a crash.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
