import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files so that a reader, or a restart after `kill -9` or a power cut, sees either the
/// old file or the complete new one, never a torn one: write a temporary file in the same
/// folder, fsync it, rename it over the target (atomic on POSIX), then fsync the folder so the
/// rename itself is durable.
///
/// Only regular files are replaced. A target that is a symbolic link is followed: the regular
/// file it names is written atomically and the link stays. A character device or FIFO
/// (`/dev/stdout`, `/dev/null`, a named pipe) is written through with a plain `open` + `write`,
/// never renamed over; a folder, block device or socket is refused (`FileError.notARegularFile`).
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
        switch try Target.resolve(url.path) {
        case .regular(let path): try replace(URL(fileURLWithPath: path), reportedAs: url.path, body)
        case .stream(let path): try writeThrough(path, body)
        case .descriptor(let n): try writeThrough(descriptor: n, shown: url.path, body)
        }
    }

    /// temp + fsync + rename + folder fsync, for a path known not to be a link or a device.
    private static func replace(_ url: URL, reportedAs shown: String, _ body: (Int32) throws -> Void) throws {
        let dir = url.deletingLastPathComponent().path
        let tmp = "\(dir)/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.cannotWrite(path: shown, reason: String(cString: strerror(errno))) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try body(fd)
            guard fsync(fd) == 0 else { throw FileError.cannotWrite(path: shown, reason: "fsync: \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        if let hook = beforeRenameHook {
            try hook(tmp)
        }
        guard rename(tmp, url.path) == 0 else {
            throw FileError.cannotWrite(path: shown, reason: "rename: \(String(cString: strerror(errno)))")
        }
        ok = true
        syncDirectory(dir)
    }

    /// A device or FIFO: opened for writing as it is (no create, no truncate, no rename), so
    /// `/dev/stdout` stays the terminal or pipe it was and `/dev/null` stays a device.
    private static func writeThrough(_ path: String, _ body: (Int32) throws -> Void) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try body(fd)
    }

    /// `/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`: the process's own open descriptor, written
    /// at its offset (so `>>` still appends and a pipe stays a pipe).
    private static func writeThrough(descriptor n: Int32, shown: String, _ body: (Int32) throws -> Void) throws {
        let fd = dup(n)
        guard fd >= 0 else { throw FileError.cannotWrite(path: shown, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try body(fd)
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

/// Where an atomic write goes: a regular file (existing or new) to replace, with every symbolic
/// link on the way followed, a character device / FIFO to write through, or one of this
/// process's open descriptors (`/dev/stdout` is a link to `/proc/self/fd/1`).
enum Target: Equatable {
    case regular(String)
    case stream(String)
    case descriptor(Int32)

    static func resolve(_ path: String) throws -> Target {
        var current = path
        for _ in 0..<40 {  // the kernel's own limit on links in a row (ELOOP)
            if let n = ownDescriptor(current) { return .descriptor(n) }
            var st = stat()
            guard lstat(current, &st) == 0 else {
                // Nothing there (or a dangling link's end): a new regular file.
                if errno == ENOENT { return .regular(current) }
                throw FileError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            switch st.st_mode & S_IFMT {
            case S_IFREG: return .regular(current)
            case S_IFCHR, S_IFIFO: return .stream(current)
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(current, &buf, buf.count - 1)
                guard n >= 0 else { throw FileError.cannotWrite(path: path, reason: "readlink: \(String(cString: strerror(errno)))") }
                let link = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                current = link.hasPrefix("/") ? link : (current as NSString).deletingLastPathComponent + "/" + link
            case S_IFDIR: throw FileError.notARegularFile(path: path, kind: "a folder")
            case S_IFBLK: throw FileError.notARegularFile(path: path, kind: "a block device")
            default: throw FileError.notARegularFile(path: path, kind: "a socket")
            }
        }
        throw FileError.cannotWrite(path: path, reason: "too many levels of symbolic links")
    }

    /// N for `/dev/fd/N`, `/proc/self/fd/N` and `/proc/<our pid>/fd/N`; `/dev/stdin`,
    /// `/dev/stdout`, `/dev/stderr` as 0, 1, 2 (the links exist on Linux, not everywhere).
    static func ownDescriptor(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdin": return 0
        case "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default: break
        }
        for prefix in ["/dev/fd/", "/proc/self/fd/", "/proc/\(getpid())/fd/"] where path.hasPrefix(prefix) {
            return Int32(path.dropFirst(prefix.count))
        }
        return nil
    }
}
