import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a file's bytes are held in memory (`MappedFile`).
public enum FileResidency: String, Sendable, CaseIterable {
    /// `mmap` of the file: nothing is read until touched, and processes that map the same
    /// weights share the kernel's pages. Pages are 4 KB.
    case mapped
    /// The whole file read at open into anonymous memory that asks for 2 MB transparent huge
    /// pages (`madvise(MADV_HUGEPAGE)`), read-only afterwards. A decoding step streams every
    /// weight once, and with 4 KB pages that is a TLB miss every 4 KB, each a two-level page walk
    /// under a hypervisor: on this VM a decode-shaped product streamed 1.2-1.4x faster from huge
    /// pages than from the mapping. Costs a full read at open and no sharing between processes.
    /// The kernel keeps the file in its page cache as well while memory allows (not counted in
    /// RSS, and given up under pressure), so the next open reads it from memory, not disk. Where
    /// the kernel gives no huge pages (THP `never`) the memory is ordinary 4 KB pages.
    case hugePages = "huge-pages"
    /// `hugePages` for files of at least `autoMinimumBytes` that fit in memory twice over (their
    /// copy beside the kernel's page cache of them, so a second run reads them from memory, not
    /// disk), else `mapped`. A 1 GB Qwen2.5-0.5B goes into huge pages on this 24 GB machine; a
    /// 15 GB 7B is mapped: copied, it pushed its own page cache out, and every run read it from
    /// disk again (27-43 s to generate 8 tokens, against 25 s mapped). Small files stay mapped:
    /// their few TLB misses are not worth a copy, nor a wait while the kernel compacts memory to
    /// find huge pages.
    case auto

    /// The smallest total size `.auto` reads into huge pages: 256 MiB.
    public static let autoMinimumBytes = 256 << 20

    /// `.auto` decided for files of `bytes` in all, against `MemAvailable` in `/proc/meminfo`
    /// (mapped where that cannot be read); the other cases as they are.
    public func resolved(forBytes bytes: Int) -> FileResidency {
        resolved(forBytes: bytes, available: self == .auto ? Self.availableMemory() : nil)
    }

    /// The same against `available` bytes of memory (nil: unknown).
    func resolved(forBytes bytes: Int, available: Int?) -> FileResidency {
        guard self == .auto else { return self }
        guard let available, bytes >= Self.autoMinimumBytes else { return .mapped }
        return 2 * bytes <= available ? .hugePages : .mapped
    }

    /// `MemAvailable` in bytes.
    static func availableMemory() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
              let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kb * 1024
    }
}

/// A read-only memory mapping of a whole file, or its bytes read into huge pages
/// (`FileResidency`).
///
/// `Data(contentsOf:options: .mappedIfSafe)` copies the file on Linux, which for a 15 GB model
/// means 15 GB of RSS before the first token; `mmap` costs nothing until pages are touched,
/// and the kernel shares the pages between processes that map the same weights.
// Unchecked Sendable: `base` and `region` are set in init and never change; the memory is
// mapped PROT_READ (or read into an anonymous region that is made read-only before init
// returns), so after init every access is a read; `deinit` unmaps it when no one holds the file.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let residency: FileResidency
    /// Start of the mapping, or nil for an empty file (mmap refuses zero-length mappings).
    public let base: UnsafeRawPointer?
    /// What `deinit` unmaps: the mapping, or the anonymous region around `base`.
    private let region: (start: UnsafeMutableRawPointer, length: Int)?

    static let hugePageSize = 2 << 20

    /// Opens `path` mapped or read into huge pages; `.auto` decides by this file's size alone.
    public init(path: String, residency requested: FileResidency = .mapped) throws(FileError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError.cannotOpen(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        let residency = requested.resolved(forBytes: size)
        self.residency = residency
        if size == 0 {
            base = nil
            region = nil
            return
        }
        switch residency {
        case .mapped:
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else {
                throw FileError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
            }
            base = UnsafeRawPointer(p)
            region = (p, size)
        case .hugePages, .auto:
            let r = try Self.readIntoHugePages(fd: fd, size: size, path: path)
            base = UnsafeRawPointer(r.base)
            region = r.region
        }
    }

    /// Reads the file into a 2 MB-aligned anonymous region advised for huge pages, then makes the
    /// region read-only.
    private static func readIntoHugePages(fd: Int32, size: Int, path: String) throws(FileError)
        -> (base: UnsafeMutableRawPointer, region: (start: UnsafeMutableRawPointer, length: Int)) {
        let huge = hugePageSize
        let rounded = (size + huge - 1) / huge * huge
        let length = rounded + huge // room to align the start
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw FileError.cannotOpen(path: path, reason: "cannot allocate \(size) bytes to read it into: \(String(cString: strerror(errno)))")
        }
        let start = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: p) + huge - 1) / huge * huge)!
        _ = madvise(start, rounded, MADV_HUGEPAGE) // advice only: without THP the pages are 4 KB
        let chunk = 64 << 20
        var done = 0
        while done < size {
            let n = pread(fd, start + done, min(chunk, size - done), off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = n < 0 ? String(cString: strerror(errno)) : "the file ended at byte \(done) of \(size) while it was read"
                munmap(p, length)
                throw FileError.cannotOpen(path: path, reason: reason)
            }
            done += n
        }
        _ = mprotect(start, rounded, PROT_READ)
        return (start, (p, length))
    }

    deinit {
        if let region { munmap(region.start, region.length) }
    }

    /// The bytes `range` of the file; the range must lie inside it.
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= size, "range \(range) outside a file of \(size) bytes")
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// Tells the kernel the whole file will be read soon (prefetch of weights); nothing to do
    /// when the bytes were read at open.
    public func adviseWillNeed() {
        if let base, residency == .mapped { madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_WILLNEED) }
    }
}

/// File-system failures, each naming the path and what went wrong.
public enum FileError: Error, CustomStringConvertible, Equatable, Sendable {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case notFound(path: String, what: String)
    /// An output path that is a folder, block device or socket: only regular files are
    /// replaced, and character devices and FIFOs written through.
    case notARegularFile(path: String, kind: String)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let r): return "cannot open \(p): \(r)"
        case .cannotWrite(let p, let r): return "cannot write \(p): \(r); check that the folder exists, is writable and the disk is not full"
        case .notFound(let p, let w): return "\(w) not found at \(p)"
        case .notARegularFile(let p, let k): return "cannot write \(p): it is \(k), not a file; name a file to write (a character device such as /dev/stdout or a named pipe is written through)"
        }
    }
}

extension FileError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
