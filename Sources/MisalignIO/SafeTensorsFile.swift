import Foundation

/// A safetensors file, memory-mapped, with its header parsed and validated.
///
/// Opening costs a header parse, not a read of the data: tensors are views into the mapping,
/// paged in by the kernel when first touched. Validation follows the reference
/// implementation (huggingface/safetensors): every entry well formed, byte sizes equal to
/// shape x dtype, entries covering the data section exactly. Nothing outside the mapping is
/// ever read, whatever the header says.
public final class SafeTensorsFile: TensorSource, Sendable {
    /// The reference implementation's limit on the header size.
    public static let maxHeaderLength = 100_000_000

    public let path: String
    public let mapping: MappedFile
    /// Every tensor, sorted by data offset.
    public let tensorInfos: [TensorInfo]
    /// `__metadata__`, empty when absent.
    public let metadata: [String: String]
    /// Byte offset of the data section in the file (8 + header length).
    public let dataStart: Int
    private let byName: [String: Int]

    public convenience init(url: URL, residency: FileResidency = .mapped) throws { try self.init(path: url.path, residency: residency) }

    /// Opens `path`, mapped or read into huge pages (`FileResidency`).
    public init(path: String, residency: FileResidency = .mapped) throws {
        self.path = path
        mapping = try MappedFile(path: path, residency: residency)
        let size = mapping.size
        guard size >= 8 else { throw SafeTensorsError.truncated(file: path, size: size) }
        let n = mapping.bytes(0..<8).loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(Self.maxHeaderLength) else {
            throw SafeTensorsError.headerTooLarge(file: path, headerLength: n, limit: Self.maxHeaderLength)
        }
        guard n <= UInt64(size - 8) else {
            throw SafeTensorsError.headerBeyondFile(file: path, headerLength: n, fileSize: size)
        }
        dataStart = 8 + Int(n)
        let parsed = try Self.parseHeader(mapping.bytes(8..<dataStart), dataSize: size - dataStart, file: path)
        tensorInfos = parsed.tensors
        metadata = parsed.metadata
        byName = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
    }

    public func contains(_ name: String) -> Bool { byName[name] != nil }

    public func info(named name: String) throws(SafeTensorsError) -> TensorInfo {
        guard let i = byName[name] else { throw SafeTensorsError.tensorNotFound(file: path, name: name) }
        return tensorInfos[i]
    }

    public func tensor(named name: String) throws(SafeTensorsError) -> SafeTensor {
        let info = try info(named: name)
        let range = (dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)
        return SafeTensor(info: info, file: path, bytes: mapping.bytes(range), owner: mapping)
    }

    /// Parses and validates a header. `header` is the JSON bytes; `dataSize` the length of the
    /// data section that follows it. Exposed for fuzzing.
    public static func parseHeader(_ header: UnsafeRawBufferPointer, dataSize: Int, file: String) throws -> (tensors: [TensorInfo], metadata: [String: String]) {
        let root: JSONValue
        do {
            root = try JSONValue.parse(header, maxDepth: 64)
        } catch {
            if let name = error.duplicateKey, error.depth == 1 {
                throw SafeTensorsError.duplicateTensor(file: file, name: name)
            }
            throw SafeTensorsError.invalidHeaderJSON(file: file, detail: error.description)
        }
        guard let obj = root.objectValue else { throw SafeTensorsError.headerNotObject(file: file, found: root.typeName) }

        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(obj.count)
        for (name, value) in obj.pairs {
            if name == "__metadata__" {
                guard let m = value.objectValue else {
                    throw SafeTensorsError.invalidMetadata(file: file, detail: "is a \(value.typeName), not an object")
                }
                for (k, v) in m.pairs {
                    guard let s = v.stringValue else {
                        throw SafeTensorsError.invalidMetadata(file: file, detail: "value of \"\(k)\" is a \(v.typeName)")
                    }
                    metadata[k] = s
                }
                continue
            }
            tensors.append(try parseEntry(name: name, value: value, dataSize: dataSize, file: file))
        }

        // Entries must tile the data section: sorted by offset, each starting where the
        // previous ended, the last ending at the end of the file.
        tensors.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        var expected = 0
        for t in tensors {
            guard t.dataOffsets.lowerBound == expected else {
                throw SafeTensorsError.overlapOrGap(file: file, tensor: t.name, begin: t.dataOffsets.lowerBound, expectedBegin: expected)
            }
            expected = t.dataOffsets.upperBound
        }
        guard expected == dataSize else { throw SafeTensorsError.dataNotCovered(file: file, covered: expected, dataSize: dataSize) }
        return (tensors, metadata)
    }

    private static func parseEntry(name: String, value: JSONValue, dataSize: Int, file: String) throws -> TensorInfo {
        func bad(_ field: String, _ detail: String) -> SafeTensorsError {
            .invalidEntry(file: file, tensor: name, field: field, detail: detail)
        }
        guard let e = value.objectValue else { throw bad("(entry)", "is a \(value.typeName), not an object") }
        guard let dtypeValue = e["dtype"] else { throw bad("dtype", "is missing") }
        guard let dtypeName = dtypeValue.stringValue else { throw bad("dtype", "is a \(dtypeValue.typeName), not a string") }
        guard let dtype = DType(rawValue: dtypeName) else { throw SafeTensorsError.unknownDType(file: file, tensor: name, dtype: dtypeName) }

        guard let shapeValue = e["shape"] else { throw bad("shape", "is missing") }
        guard let dims = shapeValue.arrayValue else { throw bad("shape", "is a \(shapeValue.typeName), not an array") }
        var shape: [Int] = []
        var elements = 1
        var overflow = false
        for d in dims {
            guard case .int(let v) = d, v >= 0, let dim = Int(exactly: v) else { throw bad("shape", "has \(d.serialized()), not a non-negative integer") }
            shape.append(dim)
            let (p, o) = elements.multipliedReportingOverflow(by: dim)
            elements = p
            overflow = overflow || o
        }

        guard let offsetsValue = e["data_offsets"] else { throw bad("data_offsets", "is missing") }
        guard let offs = offsetsValue.arrayValue, offs.count == 2,
              case .int(let b64) = offs[0], case .int(let e64) = offs[1], b64 >= 0, e64 >= 0 else {
            throw bad("data_offsets", "is \(offsetsValue.serialized()), not two non-negative integers")
        }
        guard b64 <= e64 else { throw bad("data_offsets", "has begin \(b64) after end \(e64)") }
        guard e64 <= Int64(dataSize) else {
            throw SafeTensorsError.offsetsOutOfRange(file: file, tensor: name, end: Int(e64), dataSize: dataSize)
        }
        let begin = Int(b64), end = Int(e64)
        let (bytes, o2) = elements.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, !o2, bytes == end - begin else {
            throw SafeTensorsError.sizeMismatch(file: file, tensor: name, dtype: dtype, shape: shape,
                                                expectedBytes: (overflow || o2) ? Int.max : bytes, offsetBytes: end - begin)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }
}
