import Foundation
import Testing
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignModel

/// The GGUF reader and dequantiser against gguf-py (Tests/Fixtures/gguf/make_gguf.py): every
/// supported type bit-exact, metadata of every kind, and typed errors for corrupt files.
@Suite struct GGUFReaderTests {
    static let types = try! GGUFFile(url: Fixtures.url("gguf/types.gguf"))
    static let reference = try! SafeTensorsFile(url: Fixtures.url("gguf/types.safetensors"))

    @Test(arguments: ["f32", "f16", "bf16", "q8_0", "q4_k", "q6_k"])
    func dequantisesBitExactlyAsGGUFPy(_ name: String) throws {
        let info = try Self.types.tensorInfo(named: name)
        let got = try GGUFDequantizer.floats(Self.types, info)
        let want = try Self.reference.tensor(named: name)
        #expect(got.shape == want.shape)
        let w = try want.floats()
        #expect(got.toArray().map(\.bitPattern) == w.map(\.bitPattern), "\(name) (\(info.type.name))")
    }

    @Test func readsTheHeaderAndMetadataOfEveryKind() throws {
        let f = Self.types
        #expect(f.version == 3 && f.alignment == 32 && f.dataStart % 32 == 0)
        #expect(f.tensors.map(\.type) == [.f32, .f16, .bf16, .q8_0, .q4_K, .q6_K])
        #expect(try f.tensorInfo(named: "q4_k").shape == [3, 512])
        #expect(try f.int("misalign.test.u32") == 7)
        #expect(try f.strings("misalign.test.strings") == ["a", "bc", ""])
        #expect(f["misalign.test.floats"]?.arrayValue?.compactMap(\.doubleValue) == [1.5, -2.0])
        #expect(try f.bool("misalign.test.bool") == true)
        #expect(try f.double("misalign.test.f64") == 0.1)
        #expect(try f.int("misalign.test.i64") == -5)
        #expect(try f.string("general.architecture") == "misalign-types")
        #expect(throws: GGUFError.wrongKeyType(file: f.path, key: "misalign.test.u32", expected: "a string", found: "uint32")) {
            _ = try f.string("misalign.test.u32")
        }
    }

    /// A large Q4_K input goes through the multi-core path and gives the single-block results.
    @Test func chunkedDequantisationEqualsPerBlock() throws {
        let info = try Self.types.tensorInfo(named: "q4_k")
        let raw = try Self.types.bytes(of: info)
        let copies = 3000  // 3000 x 6 blocks: several chunks
        var big = [UInt8](); big.reserveCapacity(raw.count * copies)
        for _ in 0..<copies { big += raw }
        let n = info.elementCount * copies
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        big.withUnsafeBytes { GGUFDequantizer.dequantize($0.baseAddress!, type: .q4_K, count: n, into: out) }
        let one = try GGUFDequantizer.floats(Self.types, info).toArray()
        #expect((0..<copies).allSatisfy { c in Array(UnsafeBufferPointer(start: out + c * one.count, count: one.count)) == one })
    }

    /// Released pages are read from the file again when touched.
    @Test func releasedPagesReadBackTheSameValues() throws {
        let f = try GGUFFile(url: Fixtures.url("gguf/qwen2.gguf"))
        for info in f.tensors {
            let before = try GGUFDequantizer.floats(f, info).toArray()
            f.releasePages(of: info)
            #expect(try GGUFDequantizer.floats(f, info).toArray() == before, "\(info.name)")
        }
    }

    func error(_ bytes: [UInt8]) -> GGUFError? {
        let url = Fixtures.temporaryDirectory("gguf").appendingPathComponent("x.gguf")
        try! Data(bytes).write(to: url)
        do { _ = try GGUFFile(url: url); return nil } catch let e as GGUFError { return e } catch { return nil }
    }

    @Test func corruptHeadersAreTypedErrors() throws {
        let good = try [UInt8](Data(contentsOf: Fixtures.url("gguf/types.gguf")))
        guard case .notGGUF(_, let found) = error(Array("GGML".utf8) + good.dropFirst(4)) else { Issue.record("magic"); return }
        #expect(found == "\"GGML\"")
        var v1 = good; v1[4] = 1
        #expect(error(v1).map { if case .unsupportedVersion(_, 1) = $0 { true } else { false } } == true)
        guard case .truncated(_, let field, _, let size) = error(Array(good.prefix(300))) else { Issue.record("truncated header"); return }
        #expect(size == 300 && field.contains("\""), "\(field)")  // names the metadata key it was reading
        // A count far beyond the file is refused before anything is allocated for it.
        var huge = good; huge[8..<16] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]
        #expect(error(huge).map { if case .truncated(_, let field, 16, _) = $0 { field.contains("the tensor count") } else { false } } == true)
        #expect(error(TinyGGUF.build(kv: [("k", 13, [0])], tensors: [])).map { "\($0)" }?.contains("value type 13") == true)
        guard case .duplicateKey(_, "a") = error(TinyGGUF.build(kv: [("a", 4, [1, 0, 0, 0]), ("a", 4, [2, 0, 0, 0])], tensors: [])) else {
            Issue.record("duplicate key"); return
        }
    }

    @Test func truncatedTensorDataNamesTheTensor() throws {
        let good = try [UInt8](Data(contentsOf: Fixtures.url("gguf/types.gguf")))
        guard case .tensorDataOutOfRange(_, let tensor, _, _) = error(Array(good.dropLast(100))) else { Issue.record("no error"); return }
        #expect(tensor == "q6_k")
    }

    @Test func unknownTensorTypesAreRefusedByNameWhenRead() throws {
        let url = Fixtures.temporaryDirectory("gguf").appendingPathComponent("q5.gguf")
        // Q5_K (13): listed, refused when its bytes are asked for.
        try Data(TinyGGUF.build(kv: [], tensors: [("w", [256], 13, [UInt8](repeating: 0, count: 176))])).write(to: url)
        let f = try GGUFFile(url: url)
        let info = try f.tensorInfo(named: "w")
        #expect(info.type.name == "Q5_K" && !info.type.isSupported)
        #expect(throws: GGUFError.unsupportedTensorType(file: url.path, tensor: "w", type: "Q5_K")) { _ = try f.bytes(of: info) }
        #expect("\(GGUFError.unsupportedTensorType(file: "m.gguf", tensor: "w", type: "Q5_K"))".contains("supported: F32, F16, BF16, Q8_0, Q4_K, Q6_K"))
        #expect(GGMLType(rawValue: 99).name == "type 99")
    }
}

/// A minimal GGUF v3 writer for malformed-file tests: metadata as (key, value type, raw value
/// bytes) and tensors as (name, dims innermost first, ggml type, data).
enum TinyGGUF {
    static func build(kv: [(String, UInt32, [UInt8])], tensors: [(String, [UInt64], UInt32, [UInt8])]) -> [UInt8] {
        var b = [UInt8]("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); b += s.utf8 }
        u32(3); u64(UInt64(tensors.count)); u64(UInt64(kv.count))
        for (k, t, v) in kv { str(k); u32(t); b += v }
        var offset: UInt64 = 0
        for (name, dims, type, data) in tensors {
            str(name); u32(UInt32(dims.count)); dims.forEach(u64); u32(type); u64(offset)
            offset += UInt64((data.count + 31) / 32 * 32)
        }
        while b.count % 32 != 0 { b.append(0) }
        for (_, _, _, data) in tensors { b += data; while b.count % 32 != 0 { b.append(0) } }
        return b
    }

    /// A string metadata value's raw bytes.
    static func string(_ s: String) -> [UInt8] {
        var b = [UInt8]()
        withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian) { b += $0 }
        return b + Array(s.utf8)
    }
}
