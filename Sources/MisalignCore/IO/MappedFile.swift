import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory mapping of a whole file.
///
/// `Data(contentsOf:options: .mappedIfSafe)` copies the file on Linux, which for a 15 GB model
/// means 15 GB of RSS before the first token; `mmap` costs nothing until pages are touched,
/// and the kernel shares the pages between processes that map the same weights.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    /// Start of the mapping, or nil for an empty file (mmap refuses zero-length mappings).
    public let base: UnsafeRawPointer?

    public init(path: String) throws(FileError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError.cannotOpen(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw FileError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The bytes `range` of the file; the range must lie inside it.
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= size, "range \(range) outside a file of \(size) bytes")
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// Tells the kernel the whole file will be read soon (prefetch of weights).
    public func adviseWillNeed() {
        if let base { madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_WILLNEED) }
    }
}

/// File-system failures, each naming the path and what went wrong.
public enum FileError: Error, CustomStringConvertible, Equatable, Sendable {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case notFound(path: String, what: String)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let r): return "cannot open \(p): \(r)"
        case .cannotWrite(let p, let r): return "cannot write \(p): \(r); check that the folder exists, is writable and the disk is not full"
        case .notFound(let p, let w): return "\(w) not found at \(p)"
        }
    }
}
