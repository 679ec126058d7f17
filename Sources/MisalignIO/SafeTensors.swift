import Foundation
import MisalignKernels

// The safetensors format (huggingface/safetensors): 8 bytes little-endian u64 N, then N bytes
// of a JSON object (UTF-8, may be padded with spaces), then the data section. Each entry
// `name: {"dtype", "shape", "data_offsets": [begin, end]}` has offsets relative to the data
// section; entries cover it exactly, without gaps or overlap. `__metadata__` maps strings to
// strings.

/// Element types a safetensors file can hold.
public enum DType: String, CaseIterable, Sendable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    /// Floating-point types this library converts to f32 for compute.
    public var isFloat16or32: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

/// One entry of a safetensors header.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// `[begin, end)` relative to the start of the data section.
    public let dataOffsets: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataOffsets.count }
}

/// Everything that can be wrong with a safetensors file or a sharded checkpoint. Each case
/// names the file; the description says what is wrong and what to do.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    case truncated(file: String, size: Int)
    case headerTooLarge(file: String, headerLength: UInt64, limit: Int)
    case headerBeyondFile(file: String, headerLength: UInt64, fileSize: Int)
    case invalidHeaderJSON(file: String, detail: String)
    case headerNotObject(file: String, found: String)
    case duplicateTensor(file: String, name: String)
    case invalidEntry(file: String, tensor: String, field: String, detail: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case sizeMismatch(file: String, tensor: String, dtype: DType, shape: [Int], expectedBytes: Int, offsetBytes: Int)
    case offsetsOutOfRange(file: String, tensor: String, end: Int, dataSize: Int)
    case overlapOrGap(file: String, tensor: String, begin: Int, expectedBegin: Int)
    case dataNotCovered(file: String, covered: Int, dataSize: Int)
    case invalidMetadata(file: String, detail: String)
    case tensorNotFound(file: String, name: String)
    case wrongDType(file: String, tensor: String, dtype: DType, wanted: String)
    case invalidIndex(file: String, detail: String)
    case missingShard(index: String, shard: String)
    case tensorMissingFromShard(index: String, tensor: String, shard: String)
    case noWeights(directory: String)

    public var description: String {
        switch self {
        case .truncated(let f, let s):
            return "\(f): truncated safetensors file (\(s) bytes; it needs at least 8 for the header length). Download or copy it again."
        case .headerTooLarge(let f, let n, let l):
            return "\(f): header length \(n) exceeds the \(l)-byte limit; the file is corrupt or not a safetensors file."
        case .headerBeyondFile(let f, let n, let s):
            return "\(f): header length \(n) runs past the end of the \(s)-byte file; the file is truncated or not a safetensors file."
        case .invalidHeaderJSON(let f, let d):
            return "\(f): header is not valid JSON (\(d)); the file is corrupt."
        case .headerNotObject(let f, let found):
            return "\(f): header is a JSON \(found), not an object; the file is corrupt."
        case .duplicateTensor(let f, let n):
            return "\(f): tensor \"\(n)\" appears twice in the header; the file is corrupt."
        case .invalidEntry(let f, let t, let field, let d):
            return "\(f): tensor \"\(t)\": field \"\(field)\" \(d)."
        case .unknownDType(let f, let t, let d):
            return "\(f): tensor \"\(t)\" has unknown dtype \"\(d)\" (known: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))."
        case .sizeMismatch(let f, let t, let d, let s, let e, let o):
            return "\(f): tensor \"\(t)\" is \(d.rawValue) \(s), \(e) bytes, but its data_offsets span \(o) bytes; the file is corrupt."
        case .offsetsOutOfRange(let f, let t, let e, let s):
            return "\(f): tensor \"\(t)\" ends at data offset \(e), past the \(s)-byte data section; the file is truncated."
        case .overlapOrGap(let f, let t, let b, let e):
            return "\(f): tensor \"\(t)\" starts at data offset \(b) where \(e) was expected (tensors overlap or leave a gap); the file is corrupt."
        case .dataNotCovered(let f, let c, let s):
            return "\(f): tensors cover \(c) bytes of a \(s)-byte data section; the file is corrupt or has trailing bytes."
        case .invalidMetadata(let f, let d):
            return "\(f): __metadata__ \(d); it must map strings to strings."
        case .tensorNotFound(let f, let n):
            return "\(f): no tensor named \"\(n)\". Run `misalign inspect \(f)` to list the tensors it has."
        case .wrongDType(let f, let t, let d, let w):
            return "\(f): tensor \"\(t)\" is \(d.rawValue); \(w) was needed."
        case .invalidIndex(let f, let d):
            return "\(f): \(d)."
        case .missingShard(let i, let s):
            return "\(i) names shard \"\(s)\", which is not in the folder; download the missing shard."
        case .tensorMissingFromShard(let i, let t, let s):
            return "\(i) places tensor \"\(t)\" in shard \"\(s)\", which does not contain it; the index and shards do not match."
        case .noWeights(let d):
            return "\(d): no model.safetensors, model.safetensors.index.json or other *.safetensors file."
        }
    }
}

/// Something tensors can be read from by name: one safetensors file or a sharded checkpoint.
public protocol TensorSource: Sendable {
    /// Every tensor, in data order (shard by shard for a sharded checkpoint).
    var tensorInfos: [TensorInfo] { get }
    func tensor(named name: String) throws -> SafeTensor
    func contains(_ name: String) -> Bool
}

/// A tensor inside a mapped safetensors file: its header entry and its bytes, zero-copy.
/// It keeps the mapping alive for as long as it exists.
// Unchecked Sendable: `bytes` points into a read-only mapping (`MappedFile`) that `owner`
// keeps alive; nothing writes those bytes after the file is opened, so every access is a read.
public struct SafeTensor: @unchecked Sendable {
    public let info: TensorInfo
    public let file: String
    /// The tensor's bytes in the mapping (little-endian, as stored).
    public let bytes: UnsafeRawBufferPointer
    package let owner: AnyObject

    public var name: String { info.name }
    public var dtype: DType { info.dtype }
    public var shape: [Int] { info.shape }
    public var elementCount: Int { info.elementCount }

    /// The stored elements as `T`, zero-copy, when the dtype matches and the bytes are aligned
    /// for `T` (files written by `safetensors` always are). Nil otherwise.
    public func pointer<T>(as type: T.Type, dtype expected: DType) -> UnsafePointer<T>? {
        guard dtype == expected, MemoryLayout<T>.size == dtype.size else { return nil }
        guard let base = bytes.baseAddress else { return elementCount == 0 ? UnsafePointer(bitPattern: MemoryLayout<T>.alignment) : nil }
        guard Int(bitPattern: base) % MemoryLayout<T>.alignment == 0 else { return nil }
        return base.assumingMemoryBound(to: T.self)
    }

    /// Converts F32, BF16 or F16 data to f32 into `out` (which must hold `elementCount` floats).
    public func copyAsFloat32(into out: UnsafeMutablePointer<Float>) throws(SafeTensorsError) {
        let n = elementCount
        guard n > 0, let base = bytes.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: n * 4)
        case .bf16, .f16:
            // Unaligned 16-bit data (a hand-made file) goes through an aligned copy first.
            let src: UnsafePointer<UInt16>
            var tmp: [UInt16] = []
            if Int(bitPattern: base) % 2 == 0 {
                src = base.assumingMemoryBound(to: UInt16.self)
            } else {
                tmp = [UInt16](repeating: 0, count: n)
                tmp.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
                src = tmp.withUnsafeBufferPointer { $0.baseAddress! }
            }
            withExtendedLifetime(tmp) {
                if dtype == .bf16 { Precision.bf16ToF32(src, out, count: n) } else { Precision.f16ToF32(src, out, count: n) }
            }
        default:
            throw SafeTensorsError.wrongDType(file: file, tensor: name, dtype: dtype, wanted: "F32, BF16 or F16")
        }
    }

    /// The values as f32 in a new aligned buffer with the tensor's shape.
    public func floatBuffer() throws(SafeTensorsError) -> FloatBuffer {
        let b = FloatBuffer(shape: shape, zeroed: false)
        try copyAsFloat32(into: b.pointer)
        return b
    }

    /// The values as f32, for tests and small tensors.
    public func floats() throws(SafeTensorsError) -> [Float] { try floatBuffer().toArray() }

    /// Integer tensors (I64, I32, U8, BOOL, ...) as `Int`, for fixtures and token ids.
    public func integers() throws(SafeTensorsError) -> [Int] {
        let n = elementCount
        var out = [Int](repeating: 0, count: n)
        func load<T: FixedWidthInteger>(_: T.Type) throws(SafeTensorsError) {
            for i in 0..<n {
                let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
                guard let x = Int(exactly: v) else {
                    throw SafeTensorsError.wrongDType(file: file, tensor: name, dtype: dtype, wanted: "values that fit in Int (found \(v))")
                }
                out[i] = x
            }
        }
        switch dtype {
        case .i64: try load(Int64.self)
        case .u64: try load(UInt64.self)
        case .i32: try load(Int32.self)
        case .u32: try load(UInt32.self)
        case .i16: try load(Int16.self)
        case .u16: try load(UInt16.self)
        case .i8: try load(Int8.self)
        case .u8, .bool: try load(UInt8.self)
        default:
            throw SafeTensorsError.wrongDType(file: file, tensor: name, dtype: dtype, wanted: "an integer type")
        }
        return out
    }
}

extension SafeTensorsError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
