import Foundation

/// A bounds-checked little-endian cursor over a GGUF header: every read names the field it
/// reads, so a short file fails with `GGUFError.truncated` naming it.
struct GGUFReader {
    let data: UnsafeRawBufferPointer
    let file: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, file: String) {
        data = bytes
        self.file = file
    }

    private func need(_ n: Int, _ field: String) throws(GGUFError) {
        guard n >= 0, n <= data.count - offset else {
            throw .truncated(file: file, field: field, offset: offset, size: data.count)
        }
    }

    mutating func bytes(_ n: Int, _ field: String) throws(GGUFError) -> UnsafeRawBufferPointer {
        try need(n, field)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: data[offset..<(offset + n)])
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, field)
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: data.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func u32(_ field: String) throws(GGUFError) -> UInt32 { try load(UInt32.self, field) }
    mutating func u64(_ field: String) throws(GGUFError) -> UInt64 { try load(UInt64.self, field) }

    /// A u64 count of items that each take at least `minimumBytesEach` bytes. A count that the
    /// rest of the file cannot hold means the file was cut short (or the count is corrupt): it
    /// is refused as truncated before anything is allocated for it.
    mutating func count(_ field: String, minimumBytesEach: Int) throws(GGUFError) -> Int {
        let n = try u64(field)
        let room = UInt64((data.count - offset) / max(1, minimumBytesEach))
        guard n <= room else {
            throw .truncated(file: file, field: "the \(n) items \(field) announces", offset: offset, size: data.count)
        }
        return Int(n)
    }

    mutating func string(_ field: String) throws(GGUFError) -> String {
        let n = try count("the length of \(field)", minimumBytesEach: 1)
        let raw = try bytes(n, field)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw .invalidField(file: file, field: field, detail: "is not valid UTF-8")
        }
        return s
    }

    /// A value of GGUF type `type` (0 uint8 ... 12 float64; 9 is an array).
    mutating func value(type: UInt32, field: String, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try load(UInt8.self, field))
        case 1: return .int8(try load(Int8.self, field))
        case 2: return .uint16(try load(UInt16.self, field))
        case 3: return .int16(try load(Int16.self, field))
        case 4: return .uint32(try load(UInt32.self, field))
        case 5: return .int32(try load(Int32.self, field))
        case 6: return .float32(Float(bitPattern: try load(UInt32.self, field)))
        case 7:
            let b = try load(UInt8.self, field)
            guard b <= 1 else { throw .invalidField(file: file, field: field, detail: "is a bool holding \(b), not 0 or 1") }
            return .bool(b == 1)
        case 8: return .string(try string(field))
        case 9:
            guard depth < 4 else { throw .invalidField(file: file, field: field, detail: "nests arrays more than 4 deep") }
            let elementType = try u32("the element type of \(field)")
            let n = try count("the length of \(field)", minimumBytesEach: Self.minimumSize(of: elementType))
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for i in 0..<n { items.append(try value(type: elementType, field: "\(field)[\(i)]", depth: depth + 1)) }
            return .array(items)
        case 10: return .uint64(try load(UInt64.self, field))
        case 11: return .int64(try load(Int64.self, field))
        case 12: return .float64(Double(bitPattern: try load(UInt64.self, field)))
        default:
            throw .invalidField(file: file, field: field, detail: "has value type \(type), which GGUF does not define (0-12)")
        }
    }

    /// The fewest bytes a value of `type` takes (for checking counts before allocating).
    static func minimumSize(of type: UInt32) -> Int {
        switch type {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 8, 10, 11, 12: 8
        case 9: 12
        default: 1
        }
    }
}
