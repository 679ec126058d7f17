import Foundation
import MisalignCore

/// Opening a safetensors file maps it and parses the header; touching a tensor pages in only
/// that tensor. Both should cost the same for a 64 MB and a 1 GB file.
func runSafeTensorsBenchmark(_ args: [String]) throws {
    let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("misalign-bench-safetensors")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    var table = Table("file", "tensors", "write s", "open ms", "open+touch ms", "read all GB/s")
    for (label, megabytes) in [("64 MB bf16", 64), ("256 MB bf16", 256), ("1 GB bf16", 1024)] {
        let url = dir.appendingPathComponent("bench-\(megabytes).safetensors")
        // Tensors of 4864 x 896 bf16 (8.7 MB, a Qwen2.5-0.5B MLP matrix) until the size is reached.
        let rows = 4864, cols = 896
        let count = max(1, megabytes * 1 << 20 / (rows * cols * 2))
        var writeTime = 0.0
        if !FileManager.default.fileExists(atPath: url.path) {
            let t0 = now()
            var w = SafeTensorsWriter(metadata: ["format": "pt"])
            var rng = SplitMix64(seed: UInt64(megabytes))
            for i in 0..<count {
                var data = Data(count: rows * cols * 2)
                data.withUnsafeMutableBytes { raw in
                    let p = raw.bindMemory(to: UInt64.self)
                    for j in 0..<p.count { p[j] = rng.next() & 0x3F7F_3F7F_3F7F_3F7F } // finite bf16 values
                }
                w.add("model.layers.\(i).mlp.up_proj.weight", dtype: .bf16, shape: [rows, cols], bytes: data)
            }
            try w.write(to: url)
            writeTime = now() - t0
        }
        let name = "model.layers.\(count / 2).mlp.up_proj.weight"
        let openTime = try bestTime(repeats: 20) { _ = try SafeTensorsFile(url: url) }
        let row = FloatBuffer(shape: [cols])
        let touchTime = try bestTime(repeats: 20) {
            let f = try SafeTensorsFile(url: url)
            let t = try f.tensor(named: name)
            // Convert one row of the tensor: pages in a few KB of the file.
            Precision.bf16ToF32(t.pointer(as: UInt16.self, dtype: .bf16)! + (rows / 2) * cols, row.pointer, count: cols)
        }
        let file = try SafeTensorsFile(url: url)
        let scratch = FloatBuffer(shape: [rows * cols])
        let readTime = try bestTime(repeats: 2) {
            for info in file.tensorInfos { try file.tensor(named: info.name).copyAsFloat32(into: scratch.pointer) }
        }
        let bytes = Double(file.mapping.size)
        table.add(label, "\(file.tensorInfos.count)", writeTime > 0 ? fmt(writeTime, 2) : "cached",
                  fmt(openTime * 1e3, 3), fmt(touchTime * 1e3, 3), fmt(bytes / readTime / 1e9, 2))
    }
    table.print()
    print("(open/touch: best of 20 with the file in the page cache; 'read all' converts every tensor to f32.)")
    print("files kept in \(dir.path) for reruns")
}
