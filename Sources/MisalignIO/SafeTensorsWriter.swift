import Foundation
import MisalignKernels

/// Builds a safetensors file that the reference `safetensors` library (Python and Rust) loads.
///
/// Layout follows the reference writer: tensors ordered by dtype in the reference's enum order
/// (which runs from 1-byte to 8-byte types), last first, then by name, so every tensor starts
/// at an offset aligned to its element size; the header is
/// padded with spaces to a multiple of 8 so the data section starts 8-byte aligned. The file
/// is written atomically (temp file, fsync, rename).
public struct SafeTensorsWriter {
    private struct Entry { let name: String; let dtype: DType; let shape: [Int]; let data: Data; var byteCount: Int }
    private var entries: [Entry] = []
    private var names: Set<String> = []
    public var metadata: [String: String]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    /// Adds a tensor from raw little-endian bytes.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: Data) {
        precondition(name != "__metadata__", "__metadata__ is reserved")
        precondition(!names.contains(name), "tensor \(name) added twice")
        precondition(shape.reduce(1, *) * dtype.size == bytes.count,
                     "tensor \(name): \(bytes.count) bytes do not match \(dtype.rawValue) \(shape)")
        names.insert(name)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, data: bytes, byteCount: bytes.count))
    }

    /// Declares a tensor without its bytes (for `StreamingSafeTensorsWriter`, which only needs
    /// the header); such a writer cannot write the file itself.
    mutating func addPlaceholder(_ name: String, dtype: DType, shape: [Int]) {
        precondition(!names.contains(name), "tensor \(name) added twice")
        names.insert(name)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, data: Data(), byteCount: shape.reduce(1, *) * dtype.size))
    }

    /// The padded header and the tensor names in file order.
    func headerAndOrder() -> (Data, [String]) {
        let (h, ordered) = layout()
        return (h, ordered.map(\.name))
    }

    /// Adds f32 values, stored as `dtype` (F32, BF16 with round-to-nearest-even, or F16).
    public mutating func add(_ name: String, floats: UnsafeBufferPointer<Float>, shape: [Int], dtype: DType = .f32) {
        precondition(shape.reduce(1, *) == floats.count, "tensor \(name): \(floats.count) values do not fill \(shape)")
        let n = floats.count
        var data = Data(count: n * dtype.size)
        data.withUnsafeMutableBytes { raw in
            guard n > 0, let src = floats.baseAddress else { return }
            switch dtype {
            case .f32: raw.copyMemory(from: UnsafeRawBufferPointer(floats))
            case .bf16: Precision.f32ToBF16(src, raw.baseAddress!.assumingMemoryBound(to: UInt16.self), count: n)
            case .f16: Precision.f32ToF16(src, raw.baseAddress!.assumingMemoryBound(to: UInt16.self), count: n)
            default: preconditionFailure("floats can be stored as F32, BF16 or F16, not \(dtype.rawValue)")
            }
        }
        add(name, dtype: dtype, shape: shape, bytes: data)
    }

    public mutating func add(_ name: String, floats: [Float], shape: [Int], dtype: DType = .f32) {
        floats.withUnsafeBufferPointer { add(name, floats: $0, shape: shape, dtype: dtype) }
    }

    /// Adds integers stored as I64 (token ids, labels).
    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) {
        let data = int64s.map { $0.littleEndian }.withUnsafeBytes { Data($0) }
        add(name, dtype: .i64, shape: shape, bytes: data)
    }

    /// The header bytes (padded) and the ordered entries, exactly as they will be written.
    private func layout() -> (header: Data, ordered: [Entry]) {
        let rank = { (d: DType) in DType.allCases.firstIndex(of: d)! }
        let ordered = entries.sorted { (rank($0.dtype), $1.name) > (rank($1.dtype), $0.name) }
        var header = JSONObject()
        if !metadata.isEmpty {
            header["__metadata__"] = .object(JSONObject(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        }
        var offset = 0
        for e in ordered {
            header[e.name] = .object(JSONObject([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .int(Int64($0)) })),
                ("data_offsets", .array([.int(Int64(offset)), .int(Int64(offset + e.byteCount))])),
            ]))
            offset += e.byteCount
        }
        var text = JSONValue.object(header).serialized()
        text += String(repeating: " ", count: (8 - text.utf8.count % 8) % 8)
        return (Data(text.utf8), ordered)
    }

    /// The whole file in memory (small files, tests).
    public func serialized() -> Data {
        let (header, ordered) = layout()
        var out = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(header)
        for e in ordered { out.append(e.data) }
        return out
    }

    /// Writes the file atomically, streaming tensor by tensor.
    public func write(to url: URL) throws {
        let (header, ordered) = layout()
        try AtomicFile.write(to: url) { fd in
            try withUnsafeBytes(of: UInt64(header.count).littleEndian) { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
            try header.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
            for e in ordered {
                try e.data.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
            }
        }
    }
}
