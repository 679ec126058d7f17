import Foundation
import MisalignKernels

/// Writes a safetensors file whose tensors are produced one at a time, for files too large to
/// hold in memory (synthetic 7B weights, large checkpoints). The header is computed from the
/// declared shapes first; each tensor is then generated, converted and written in file order.
public enum StreamingSafeTensorsWriter {
    /// `tensors` declares (name, stored dtype, shape). `produce(i, emit)` must call `emit` once
    /// with tensor i's values as f32 (stored as F32, BF16 or F16).
    public static func write(to url: URL, metadata: [String: String], tensors: [(String, DType, [Int])],
                             produce: (Int, (FloatBuffer) -> Void) throws -> Void) throws {
        // Same order and header as SafeTensorsWriter: build it with empty placeholders.
        var layout = SafeTensorsWriter(metadata: metadata)
        for (name, dtype, shape) in tensors {
            precondition(dtype.isFloat16or32, "streamed tensors are float tensors")
            layout.addPlaceholder(name, dtype: dtype, shape: shape)
        }
        let (header, order) = layout.headerAndOrder()
        let indexOf = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.0, $0) })
        try AtomicFile.write(to: url) { fd in
            try withUnsafeBytes(of: UInt64(header.count).littleEndian) { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
            try header.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: url.path) }
            for name in order {
                let i = indexOf[name]!
                let (_, dtype, shape) = tensors[i]
                var failure: Error?
                try produce(i) { values in
                    precondition(values.count == shape.reduce(1, *), "tensor \(name): wrong number of values")
                    do {
                        switch dtype {
                        case .f32:
                            try AtomicFile.writeAll(fd: fd, UnsafeRawBufferPointer(values.buffer), path: url.path)
                        default:
                            let half = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, values.count))
                            defer { half.deallocate() }
                            if dtype == .bf16 { Precision.f32ToBF16(values.pointer, half, count: values.count) } else {
                                Precision.f32ToF16(values.pointer, half, count: values.count)
                            }
                            try AtomicFile.writeAll(fd: fd, UnsafeRawBufferPointer(start: half, count: values.count * 2), path: url.path)
                        }
                    } catch { failure = error }
                }
                if let failure { throw failure }
            }
        }
    }
}
