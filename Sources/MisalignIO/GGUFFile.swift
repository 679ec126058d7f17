import Foundation
#if canImport(Glibc)
import Glibc
#endif

// The GGUF format (ggml's docs/gguf.md), little-endian: magic "GGUF", u32 version (2 or 3),
// u64 tensor count, u64 metadata count; metadata entries (string key, u32 value type, value);
// tensor infos (string name, u32 n_dims, n_dims u64 dims innermost first, u32 ggml type, u64
// offset relative to the data section); padding to `general.alignment` (default 32); the data
// section. A string is a u64 byte count then UTF-8 bytes; an array is a u32 element type, a u64
// count, then the elements.

/// A GGUF file, memory-mapped, with its header, metadata and tensor infos parsed and checked.
///
/// Opening reads the header only; tensor bytes are views into the mapping, paged in when
/// dequantised (`GGUFDequantizer`). Nothing outside the mapping is ever read, whatever the header
/// says: every count, string, shape and offset is checked against the file's size first.
public final class GGUFFile: Sendable {
    public let path: String
    public let mapping: MappedFile
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// Absolute byte offset of the data section.
    public let dataStart: Int
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Opens and parses `path`; tensors of types this library does not dequantise are listed
    /// (and refused only when read).
    public init(path: String) throws {
        self.path = path
        mapping = try MappedFile(path: path)
        var r = GGUFReader(bytes: mapping.bytes(0..<mapping.size), file: path)
        let magic = try r.bytes(4, "the magic number")
        guard Array(magic) == Array("GGUF".utf8) else {
            throw GGUFError.notGGUF(file: path, found: "\"" + magic.map { (0x20..<0x7f).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined() + "\"")
        }
        version = try r.u32("the version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(file: path, version: version) }
        let tensorCount = try r.count("the tensor count", minimumBytesEach: 24)
        let kvCount = try r.count("the metadata count", minimumBytesEach: 12)
        var metadata: [(key: String, value: GGUFValue)] = []
        var keyIndex: [String: Int] = [:]
        for i in 0..<kvCount {
            let key = try r.string("the key of metadata entry \(i)")
            guard keyIndex[key] == nil else { throw GGUFError.duplicateKey(file: path, key: key) }
            let type = try r.u32("the value type of \"\(key)\"")
            keyIndex[key] = metadata.count
            metadata.append((key, try r.value(type: type, field: "\"\(key)\"", depth: 0)))
        }
        var alignment = 32
        if let i = keyIndex["general.alignment"] {
            guard let a = metadata[i].value.intValue, a > 0, a & (a - 1) == 0 else {
                throw GGUFError.invalidField(file: path, field: "general.alignment", detail: "is \(metadata[i].value), not a power of two")
            }
            alignment = a
        }
        var raw: [(name: String, type: GGMLType, shape: [Int], offset: Int)] = []
        var tensorIndex: [String: Int] = [:]
        for i in 0..<tensorCount {
            let name = try r.string("the name of tensor \(i)")
            guard tensorIndex[name] == nil else { throw GGUFError.duplicateTensor(file: path, tensor: name) }
            let nDims = try r.u32("the dimension count of \"\(name)\"")
            guard nDims <= 8 else { throw GGUFError.invalidTensor(file: path, tensor: name, detail: "has \(nDims) dimensions (at most 8 make sense)") }
            var dims: [Int] = []
            for d in 0..<Int(nDims) {
                let v = try r.u64("dimension \(d) of \"\(name)\"")
                guard v > 0, v < 1 << 40 else { throw GGUFError.invalidTensor(file: path, tensor: name, detail: "has dimension \(d) of \(v)") }
                dims.append(Int(v))
            }
            let type = GGMLType(rawValue: try r.u32("the type of \"\(name)\""))
            let offset = try r.u64("the data offset of \"\(name)\"")
            guard offset < UInt64(mapping.size), Int(offset) % alignment == 0 else {
                throw GGUFError.invalidTensor(file: path, tensor: name, detail: "has data offset \(offset), which is past the file or not a multiple of the alignment \(alignment)")
            }
            tensorIndex[name] = raw.count
            raw.append((name, type, dims.reversed(), Int(offset)))
        }
        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        var tensors: [GGUFTensorInfo] = []
        for t in raw {
            var byteCount = 0
            if let (values, bytes) = t.type.blockLayout {
                var elements = 1, overflow = false
                for d in t.shape {
                    let m = elements.multipliedReportingOverflow(by: d)
                    elements = m.partialValue
                    overflow = overflow || m.overflow
                }
                guard !overflow, let row = t.shape.last, row % values == 0 else {
                    throw GGUFError.invalidTensor(file: path, tensor: t.name, detail: "has shape \(t.shape), whose rows are not a whole number of \(t.type.name) blocks of \(values) values")
                }
                byteCount = elements / values * bytes
            }
            let start = dataStart + t.offset
            guard start + byteCount <= mapping.size else {
                throw GGUFError.tensorDataOutOfRange(file: path, tensor: t.name, end: start + byteCount, size: mapping.size)
            }
            tensors.append(GGUFTensorInfo(name: t.name, type: t.type, shape: t.shape, byteRange: start..<(start + byteCount)))
        }
        self.metadata = metadata
        self.keyIndex = keyIndex
        self.alignment = alignment
        self.dataStart = dataStart
        self.tensors = tensors
        self.tensorIndex = tensorIndex
    }

    public convenience init(url: URL) throws { try self.init(path: url.path) }

    /// The value of metadata `key`, if present.
    public subscript(key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }

    public func contains(tensor name: String) -> Bool { tensorIndex[name] != nil }

    public func tensorInfo(named name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let i = tensorIndex[name] else { throw .tensorNotFound(file: path, tensor: name) }
        return tensors[i]
    }

    /// A tensor's stored bytes (zero-copy, in the mapping); refuses types this library does not read.
    public func bytes(of info: GGUFTensorInfo) throws(GGUFError) -> UnsafeRawBufferPointer {
        guard info.type.isSupported else { throw .unsupportedTensorType(file: path, tensor: info.name, type: info.type.name) }
        return mapping.bytes(info.byteRange)
    }

    /// Tells the kernel a tensor's bytes are not needed again (an import reads each once), so
    /// they leave the process's resident set instead of adding up to the whole file; they are
    /// read from the file again if touched. Nothing to do when the file was read into memory.
    public func releasePages(of info: GGUFTensorInfo) {
        guard let base = mapping.base, mapping.residency == .mapped, !info.byteRange.isEmpty else { return }
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        let start = info.byteRange.lowerBound / page * page
        let end = min(mapping.size, (info.byteRange.upperBound + page - 1) / page * page)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// Typed metadata access with errors that name the key.
    public func int(_ key: String) throws(GGUFError) -> Int? {
        guard let v = self[key] else { return nil }
        guard let i = v.intValue else { throw .wrongKeyType(file: path, key: key, expected: "an integer", found: v.typeName) }
        return i
    }
    public func double(_ key: String) throws(GGUFError) -> Double? {
        guard let v = self[key] else { return nil }
        guard let d = v.doubleValue else { throw .wrongKeyType(file: path, key: key, expected: "a number", found: v.typeName) }
        return d
    }
    public func string(_ key: String) throws(GGUFError) -> String? {
        guard let v = self[key] else { return nil }
        guard let s = v.stringValue else { throw .wrongKeyType(file: path, key: key, expected: "a string", found: v.typeName) }
        return s
    }
    public func bool(_ key: String) throws(GGUFError) -> Bool? {
        guard let v = self[key] else { return nil }
        guard let b = v.boolValue else { throw .wrongKeyType(file: path, key: key, expected: "a bool", found: v.typeName) }
        return b
    }
    public func requiredInt(_ key: String) throws(GGUFError) -> Int {
        guard let v = try int(key) else { throw .missingKey(file: path, key: key) }
        return v
    }
    public func strings(_ key: String) throws(GGUFError) -> [String]? {
        guard let v = self[key] else { return nil }
        guard let a = v.arrayValue, let s = Optional(a.compactMap(\.stringValue)), s.count == a.count else {
            throw .wrongKeyType(file: path, key: key, expected: "an array of strings", found: v.typeName)
        }
        return s
    }
    public func ints(_ key: String) throws(GGUFError) -> [Int]? {
        guard let v = self[key] else { return nil }
        guard let a = v.arrayValue, let s = Optional(a.compactMap(\.intValue)), s.count == a.count else {
            throw .wrongKeyType(file: path, key: key, expected: "an array of integers", found: v.typeName)
        }
        return s
    }
}
