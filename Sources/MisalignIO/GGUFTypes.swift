import Foundation

/// A GGML tensor type: the ones this library dequantises, and the rest by number and name so
/// that a file holding them is refused by name.
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    /// The `ggml_type` number stored in the file.
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let bf16 = GGMLType(rawValue: 30)

    /// The types `GGUFDequantizer` converts.
    public static let supported: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_K, .q6_K]
    static var supportedNames: String { supported.map(\.name).joined(separator: ", ") }

    /// ggml's names (`ggml_type_name`), so errors can name what they refuse.
    private static let names: [UInt32: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
        12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
        20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
        29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
    ]

    /// The ggml name (`Q4_K`), or `type N` for a number ggml does not define.
    public var name: String { Self.names[rawValue] ?? "type \(rawValue)" }
    public var description: String { name }
    public var isSupported: Bool { Self.supported.contains(self) }

    /// Values per block and bytes per block (1 value per "block" for the float types); nil for
    /// types this library does not read.
    public var blockLayout: (values: Int, bytes: Int)? {
        switch self {
        case .f32: (1, 4)
        case .f16, .bf16: (1, 2)
        case .q8_0: (32, 34)
        case .q4_K: (256, 144)
        case .q6_K: (256, 210)
        default: nil
        }
    }
}

/// One metadata value of a GGUF file (`gguf_type`).
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// Integer types as `Int` (nil for other types and values that do not fit).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(exactly: v)
        default: nil
        }
    }

    /// Float and integer types as `Double`.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var arrayValue: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }

    /// The GGUF name of the value's type (`uint32`, `array of string`, ...), for errors.
    public var typeName: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float32: "float32"
        case .float64: "float64"
        case .bool: "bool"
        case .string: "string"
        case .array(let a): "array of \(a.first?.typeName ?? "nothing")"
        }
    }
}

/// One tensor of a GGUF file: its name, type, shape and where its bytes are.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    public let type: GGMLType
    /// Dimensions in PyTorch / safetensors order, outermost first (GGUF stores them innermost
    /// first, `ne[0]` being the row length).
    public let shape: [Int]
    /// Byte range in the file (absolute).
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}
