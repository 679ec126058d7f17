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

/// Reading what Python's safetensors wrote, and writing what it reads.
@Suite struct SafeTensorsTests {
    /// Checks a tensor against the description make_fixtures.py recorded from Python.
    func check(_ t: SafeTensor, against e: JSONValue) throws {
        let v = try t.floats().map(Double.init)
        #expect(t.shape == e["shape"]!.arrayValue!.map { $0.intValue! }, "\(t.name) shape")
        let first = e["first"]!.arrayValue!.map { $0.doubleValue! }
        let last = e["last"]!.arrayValue!.map { $0.doubleValue! }
        #expect(Array(v.prefix(8)) == first, "\(t.name) first values")
        #expect(Array(v.suffix(8)) == last, "\(t.name) last values")
        if let all = e["values"]?.arrayValue { #expect(v == all.map { $0.doubleValue! }, "\(t.name) values") }
        let sum = v.reduce(0, +)
        let wsum = v.enumerated().reduce(0.0) { $0 + $1.element * Double($1.offset % 97 + 1) }
        let es = e["sum"]!.doubleValue!, ew = e["weighted_sum"]!.doubleValue!
        let scale = v.reduce(0) { $0 + abs($1) } * 100 + 1
        #expect(abs(sum - es) <= 1e-12 * scale, "\(t.name) sum \(sum) vs \(es)")
        #expect(abs(wsum - ew) <= 1e-12 * scale, "\(t.name) weighted sum \(wsum) vs \(ew)")
    }

    /// Mapped, read into huge pages, or `.auto` (which maps a few-MB model, once for all its
    /// shards).
    @Test(arguments: [("qwen2-small", FileResidency.mapped), ("qwen2-small-bf16-sharded", .mapped), ("qwen2-small-bf16-sharded", .hugePages),
                      ("qwen2-small-bf16-sharded", .auto)])
    func everyTensorMatchesPython(folder: String, residency: FileResidency) throws {
        let expected = try loadJSON("safetensors/expected_weights.json")[folder]!.objectValue!
        let weights = try ShardedSafeTensors(directory: Fixtures.url(folder), residency: residency)
        #expect(weights.shards.allSatisfy { $0.mapping.residency == (residency == .auto ? .mapped : residency) })
        #expect(Set(weights.tensorInfos.map(\.name)) == Set(expected.keys))
        for (name, e) in expected.pairs {
            let t = try weights.tensor(named: name)
            #expect(weights.shard(containing: name).map { ($0.path as NSString).lastPathComponent } == e["file"]?.stringValue)
            #expect(t.dtype == (e["dtype"]!.stringValue! == "bfloat16" ? .bf16 : .f32))
            try check(t, against: e)
        }
        if folder.hasSuffix("sharded") {
            #expect(weights.shards.count == 7)
            #expect(weights.indexPath != nil)
        }
    }

    /// A file read into huge pages holds the file's bytes from a 2 MB boundary, whatever its size
    /// (one byte past a huge page here, and empty).
    @Test func hugePageResidencyHoldsTheFileBytes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("misalign-huge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 3)
        let bytes = (0..<((2 << 20) + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let path = dir.appendingPathComponent("blob").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let huge = try MappedFile(path: path, residency: .hugePages), mapped = try MappedFile(path: path)
        #expect(huge.size == bytes.count && huge.residency == .hugePages && mapped.residency == .mapped)
        #expect(Int(bitPattern: huge.base!) % (2 << 20) == 0)
        #expect(Array(huge.bytes(0..<huge.size)) == bytes)
        #expect(Array(mapped.bytes(0..<mapped.size)) == bytes)
        let empty = dir.appendingPathComponent("empty").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(try MappedFile(path: empty, residency: .hugePages).base == nil)
        #expect(throws: FileError.self) { _ = try MappedFile(path: dir.path, residency: .hugePages) } // a folder
        #expect(throws: FileError.self) { _ = try MappedFile(path: dir.appendingPathComponent("missing").path, residency: .hugePages) }
    }

    /// `.auto`: huge pages for files of 256 MiB or more that fit in available memory twice
    /// over, else mapped; the other cases stay as asked.
    @Test func autoResidencyDecidesBySize() throws {
        #expect(FileResidency.auto.resolved(forBytes: 8 << 30, available: 16 << 30) == .hugePages)
        #expect(FileResidency.auto.resolved(forBytes: (8 << 30) + 1, available: 16 << 30) == .mapped)
        #expect(FileResidency.auto.resolved(forBytes: 256 << 20, available: 16 << 30) == .hugePages)
        #expect(FileResidency.auto.resolved(forBytes: (256 << 20) - 1, available: 16 << 30) == .mapped) // too small to gain
        #expect(FileResidency.auto.resolved(forBytes: 1 << 30, available: nil) == .mapped) // no /proc/meminfo
        #expect(FileResidency.mapped.resolved(forBytes: 1 << 30, available: 16 << 30) == .mapped)
        #expect(FileResidency.hugePages.resolved(forBytes: 1, available: 16 << 30) == .hugePages)
        #expect(try #require(FileResidency.availableMemory()) > 0) // this machine's own reading
    }

    @Test func readsEveryDTypeAndMetadata() throws {
        let file = try SafeTensorsFile(url: Fixtures.url("safetensors/python_written.safetensors"))
        let expected = try loadJSON("safetensors/python_written.safetensors.expected.json")
        #expect(file.metadata == ["format": "pt"])
        #expect(file.dataStart % 8 == 0)
        for (name, e) in expected["tensors"]!.objectValue!.pairs {
            let t = try file.tensor(named: name)
            #expect(t.shape == e["shape"]!.arrayValue!.map { $0.intValue! })
            let values = e["values"]!.arrayValue!
            if [DType.f32, .bf16, .f16].contains(t.dtype) {
                #expect(try t.floats().map(Double.init) == values.map { $0.doubleValue! }, "\(name)")
            } else {
                #expect(try t.integers() == values.map { $0.intValue! }, "\(name)")
            }
        }
        let f32 = try file.tensor(named: "f32.matrix")
        #expect(f32.pointer(as: Float.self, dtype: .f32) != nil, "aligned F32 data is reachable zero-copy")
        #expect(throws: SafeTensorsError.self) { _ = try file.tensor(named: "u8.bytes").floats() }
        #expect(throws: SafeTensorsError.self) { _ = try file.tensor(named: "nope") }
    }

    /// The writer's bytes equal those of the reference writer for the same tensors.
    @Test func writerMatchesPythonByteForByte() throws {
        let reference = try Data(contentsOf: Fixtures.url("safetensors/python_written.safetensors"))
        let source = try SafeTensorsFile(url: Fixtures.url("safetensors/python_written.safetensors"))
        var w = SafeTensorsWriter(metadata: source.metadata)
        for info in source.tensorInfos.reversed() { // insertion order must not matter
            let t = try source.tensor(named: info.name)
            w.add(info.name, dtype: info.dtype, shape: info.shape, bytes: Data(t.bytes))
        }
        #expect(w.serialized() == reference)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("copy.safetensors")
        try w.write(to: out)
        #expect(try Data(contentsOf: out) == reference)
    }

    @Test func writerRoundTripsFloatsInEachPrecision() throws {
        var rng = TestRNG(seed: 9)
        let values = rng.floats(257).map { $0 * 1000 }
        var w = SafeTensorsWriter(metadata: ["format": "pt", "step": "12"])
        w.add("a.f32", floats: values, shape: [257])
        w.add("a.bf16", floats: values, shape: [257], dtype: .bf16)
        w.add("a.f16", floats: values, shape: [257], dtype: .f16)
        w.add("ids", int64s: [1, -2, 1 << 50], shape: [3])
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("w.safetensors")
        try w.write(to: url)
        let f = try SafeTensorsFile(url: url)
        #expect(f.metadata == ["format": "pt", "step": "12"])
        #expect(try f.tensor(named: "a.f32").floats() == values)
        #expect(try f.tensor(named: "a.bf16").floats() == Precision.bf16ToF32(Precision.f32ToBF16(values)))
        #expect(try f.tensor(named: "a.f16").floats() == Precision.f16ToF32(Precision.f32ToF16(values)))
        #expect(try f.tensor(named: "ids").integers() == [1, -2, 1 << 50])
        // Every tensor starts aligned to its element size in the file.
        for t in f.tensorInfos { #expect((f.dataStart + t.dataOffsets.lowerBound) % t.dtype.size == 0) }
    }

    @Test func failedWriteLeavesNoFileAndKeepsTheOldOne() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir); AtomicFile.beforeRenameHook = nil }
        let url = dir.appendingPathComponent("adapter.safetensors")
        var w = SafeTensorsWriter()
        w.add("x", floats: [1, 2, 3], shape: [3])
        try w.write(to: url)
        let before = try Data(contentsOf: url)
        struct SimulatedCrash: Error {}
        // The hook is process-wide and other tests write files in parallel: crash only here.
        let mine = dir.path
        AtomicFile.beforeRenameHook = { tmp in if tmp.hasPrefix(mine) { throw SimulatedCrash() } }
        var w2 = SafeTensorsWriter()
        w2.add("x", floats: [9, 9, 9, 9], shape: [4])
        #expect(throws: SimulatedCrash.self) { try w2.write(to: url) }
        AtomicFile.beforeRenameHook = nil
        #expect(try Data(contentsOf: url) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["adapter.safetensors"], "no temp file left")
        let fresh = dir.appendingPathComponent("new.safetensors")
        AtomicFile.beforeRenameHook = { tmp in if tmp.hasPrefix(mine) { throw SimulatedCrash() } }
        #expect(throws: SimulatedCrash.self) { try w2.write(to: fresh) }
        #expect(!FileManager.default.fileExists(atPath: fresh.path))
    }

    /// Only Python's safetensors can say a file is loadable by Python. When python3 with
    /// safetensors is installed (`make setup` installs it), the round trip runs live:
    /// Swift writes, Python reads and checks, Python writes, Swift reads and checks.
    @Test(.enabled(if: PythonCheck.available, "python3 with safetensors and numpy is not installed"))
    func liveRoundTripThroughPython() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = SafeTensorsWriter(metadata: ["format": "pt", "writer": "misalign"])
        var rng = TestRNG(seed: 5)
        let values = rng.floats(24)
        w.add("w.f32", floats: values, shape: [4, 6])
        w.add("w.bf16", floats: values, shape: [2, 12], dtype: .bf16)
        w.add("w.f16", floats: values, shape: [24], dtype: .f16)
        w.add("ids", int64s: [3, 1, 4, 1, 5], shape: [5])
        let swiftFile = dir.appendingPathComponent("swift.safetensors")
        let pythonFile = dir.appendingPathComponent("python.safetensors")
        try w.write(to: swiftFile)
        let output = try PythonCheck.run(script: "safetensors/roundtrip_check.py", arguments: [swiftFile.path, pythonFile.path])
        #expect(output.contains("ok"), "python said: \(output)")
        let back = try SafeTensorsFile(url: pythonFile)
        #expect(try back.tensor(named: "w.f32").floats() == values)
        #expect(!back.contains("w.bf16"), "numpy cannot hold bf16; Python checked those bits itself")
        #expect(try back.tensor(named: "w.f16").floats() == Precision.f16ToF32(Precision.f32ToF16(values)))
        #expect(try back.tensor(named: "ids").integers() == [3, 1, 4, 1, 5])
        // Python doubled the f32 tensor and added one of its own.
        #expect(try back.tensor(named: "doubled").floats() == values.map { $0 * 2 })
        #expect(back.metadata["writer"] == "python")
    }
}

enum PythonCheck {
    static let available: Bool = {
        (try? run(arguments: ["-c", "import safetensors, numpy"])) != nil
    }()

    @discardableResult
    static func run(script: String? = nil, arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + (script.map { [Fixtures.url($0).path] } ?? []) + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        struct Failed: Error, CustomStringConvertible { let description: String }
        guard p.terminationStatus == 0 else { throw Failed(description: out) }
        return out
    }
}
