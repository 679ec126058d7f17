import Testing
import Foundation
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// Every way a safetensors file can be corrupt gets a typed error naming the file, never a
/// crash or a read outside the mapping.
@Suite struct SafeTensorsBadInputTests {
    func open(_ bytes: [UInt8]) throws -> SafeTensorsFile {
        let path = temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        return try SafeTensorsFile(path: path)
    }

    func expectError(_ bytes: [UInt8], _ matches: (SafeTensorsError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try open(bytes)
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch let e as SafeTensorsError {
            #expect(matches(e), "got \(e)", sourceLocation: sourceLocation)
            #expect(e.description.contains("t.safetensors"), "the message names the file: \(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    let f32x2 = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    let data8 = [UInt8](repeating: 0, count: 8)

    @Test func acceptsAWellFormedFile() throws {
        let f = try open(safetensorsImage(header: f32x2, data: data8))
        #expect(f.tensorInfos.map(\.name) == ["a"])
    }

    @Test func truncatedFiles() {
        expectError([]) { if case .truncated = $0 { return true }; return false }
        expectError([1, 2, 3]) { if case .truncated = $0 { return true }; return false }
        // Data section shorter than the offsets say.
        expectError(safetensorsImage(header: f32x2, data: [0, 0, 0])) { if case .offsetsOutOfRange = $0 { return true }; return false }
    }

    @Test func headerLengths() {
        expectError(safetensorsImage(header: f32x2, data: data8, declaredLength: 1 << 40)) {
            if case .headerTooLarge = $0 { return true }; return false
        }
        expectError(safetensorsImage(header: f32x2, data: data8, declaredLength: 500)) {
            if case .headerBeyondFile = $0 { return true }; return false
        }
        expectError(safetensorsImage(header: f32x2, data: data8, declaredLength: UInt64.max)) {
            if case .headerTooLarge = $0 { return true }; return false
        }
    }

    @Test func headerNotJSONOrNotObject() {
        expectError(safetensorsImage(header: "{\"a\":", data: [])) { if case .invalidHeaderJSON = $0 { return true }; return false }
        expectError(safetensorsImage(header: "[1,2]", data: [])) { if case .headerNotObject(_, "array") = $0 { return true }; return false }
        expectError(safetensorsImage(header: "\u{FF}", data: [])) { if case .invalidHeaderJSON = $0 { return true }; return false }
    }

    @Test func unknownDType() {
        expectError(safetensorsImage(header: #"{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 16))) {
            if case .unknownDType(_, "a", "F128") = $0 { return true }; return false
        }
    }

    @Test func malformedEntries() {
        let cases: [(String, String)] = [
            (#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, "dtype"),
            (#"{"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}"#, "dtype"),
            (#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, "shape"),
            (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "shape"),
            (#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, "shape"),
            (#"{"a":{"dtype":"F32","shape":[2]}}"#, "data_offsets"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}"#, "data_offsets"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "data_offsets"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, "data_offsets"),
            (#"{"a":[1,2]}"#, "(entry)"),
        ]
        for (header, field) in cases {
            expectError(safetensorsImage(header: header, data: data8)) {
                if case .invalidEntry(_, "a", let f, _) = $0 { return f == field }; return false
            }
        }
    }

    @Test func shapeDisagreesWithOffsets() {
        expectError(safetensorsImage(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: data8)) {
            if case .sizeMismatch(_, "a", .f32, [3], 12, 8) = $0 { return true }; return false
        }
        // A shape whose byte size overflows Int.
        expectError(safetensorsImage(header: #"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: data8)) {
            if case .sizeMismatch = $0 { return true }; return false
        }
    }

    @Test func offsetsOverlapLeaveGapsOrMissData() {
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectError(safetensorsImage(header: overlap, data: data8)) { if case .overlapOrGap(_, "b", 4, 8) = $0 { return true }; return false }
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectError(safetensorsImage(header: gap, data: data8)) { if case .overlapOrGap(_, "a", 4, 0) = $0 { return true }; return false }
        expectError(safetensorsImage(header: f32x2, data: data8 + [0, 0, 0, 0])) {
            if case .dataNotCovered(_, 8, 12) = $0 { return true }; return false
        }
        let beyond = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        expectError(safetensorsImage(header: beyond, data: data8)) { if case .offsetsOutOfRange(_, "a", 16, 8) = $0 { return true }; return false }
    }

    @Test func duplicateNamesAndBadMetadata() {
        let dup = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectError(safetensorsImage(header: dup, data: data8)) { if case .duplicateTensor(_, "a") = $0 { return true }; return false }
        let meta = #"{"__metadata__":{"format":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        expectError(safetensorsImage(header: meta, data: data8)) { if case .invalidMetadata = $0 { return true }; return false }
        let meta2 = #"{"__metadata__":[],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        expectError(safetensorsImage(header: meta2, data: data8)) { if case .invalidMetadata = $0 { return true }; return false }
    }

    @Test func shardedIndexProblems() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let shard = dir.appendingPathComponent("model-00001-of-00002.safetensors")
        FileManager.default.createFile(atPath: shard.path, contents: Data(safetensorsImage(header: f32x2, data: data8)))
        let index = dir.appendingPathComponent(ShardedSafeTensors.indexFileName)
        func writeIndex(_ text: String) { FileManager.default.createFile(atPath: index.path, contents: Data(text.utf8)) }

        writeIndex(#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#)
        #expect { _ = try ShardedSafeTensors(directory: dir) } throws: {
            if case .missingShard(_, "model-00002-of-00002.safetensors") = $0 as? SafeTensorsError { return true }; return false
        }
        writeIndex(#"{"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}"#)
        #expect { _ = try ShardedSafeTensors(directory: dir) } throws: {
            if case .tensorMissingFromShard(_, "c", _) = $0 as? SafeTensorsError { return true }; return false
        }
        writeIndex(#"{"metadata":{}}"#)
        #expect { _ = try ShardedSafeTensors(directory: dir) } throws: {
            if case .invalidIndex = $0 as? SafeTensorsError { return true }; return false
        }
        writeIndex(#"{"weight_map":{"a":"../elsewhere.safetensors"}}"#)
        #expect { _ = try ShardedSafeTensors(directory: dir) } throws: {
            if case .invalidIndex = $0 as? SafeTensorsError { return true }; return false
        }
        writeIndex(#"{"weight_map":{"a":"model-00001-of-00002.safetensors"}}"#)
        let ok = try ShardedSafeTensors(directory: dir)
        #expect(ok.tensorInfos.map(\.name) == ["a"])
        try FileManager.default.removeItem(at: index)
        try FileManager.default.removeItem(at: shard)
        #expect { _ = try ShardedSafeTensors(directory: dir) } throws: {
            if case .noWeights = $0 as? SafeTensorsError { return true }; return false
        }
    }

    /// Seeded random mutation of valid headers: thousands of inputs, every one either parses
    /// into entries that stay inside the data section or throws a SafeTensorsError.
    @Test func fuzzHeaderParser() throws {
        let seeds = [
            #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]}}"#,
            #"{"x":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"y":{"dtype":"U8","shape":[0],"data_offsets":[8,8]},"z":{"dtype":"BOOL","shape":[8],"data_offsets":[8,16]}}"#,
        ]
        let alphabet = Array(#"{}[]",:0123456789-.eE"\ ua_FBIU"#.utf8) + [0, 0xFF, 0xC3, 0x80]
        var rng = TestRNG(seed: 2026)
        var parsed = 0, rejected = 0
        for iteration in 0..<6000 {
            var bytes = Array(seeds[iteration % seeds.count].utf8)
            let mutations = 1 + Int(rng.next() % 6)
            for _ in 0..<mutations {
                let pos = Int(rng.next() % UInt64(max(1, bytes.count)))
                switch rng.next() % 5 {
                case 0: if !bytes.isEmpty { bytes[pos] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                case 1: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: min(pos, bytes.count))
                case 2: if !bytes.isEmpty { bytes.remove(at: pos) }
                case 3: // duplicate a slice, often repeating keys or digits
                    let len = Int(rng.next() % 12)
                    let end = min(bytes.count, pos + len)
                    bytes.insert(contentsOf: bytes[pos..<end], at: pos)
                default: if !bytes.isEmpty { bytes[pos] = UInt8(truncatingIfNeeded: rng.next()) }
                }
            }
            let dataSize = Int(rng.next() % 24)
            do {
                let result = try bytes.withUnsafeBytes { try SafeTensorsFile.parseHeader($0, dataSize: dataSize, file: "fuzz") }
                for t in result.tensors {
                    #expect(t.dataOffsets.upperBound <= dataSize && t.byteCount == t.elementCount * t.dtype.size)
                }
                parsed += 1
            } catch is SafeTensorsError {
                rejected += 1
            }
        }
        #expect(parsed + rejected == 6000)
        #expect(rejected > 1000, "the mutations reach the error paths")
    }
}
