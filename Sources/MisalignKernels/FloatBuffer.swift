import Foundation

/// Alignment of every buffer we allocate: one cache line, and the width of an AVX-512 load.
public let bufferAlignment = 64

/// An owned, 64-byte-aligned block of `Float`s with a row-major shape.
///
/// Kernels never index a `FloatBuffer` element by element from Swift; they take its
/// `pointer` (or a `TensorView` of it) and run over raw memory. That keeps exclusivity and
/// copy-on-write checks out of hot loops, which cost 10-20x on this platform.
// Unchecked Sendable: `shape`, `count` and `pointer` are constants; the floats behind `pointer`
// are not guarded. Whoever owns a buffer orders its writes: one thread at a time writes it (the
// forward pass, training step or generation loop that allocated it; kernels' worker threads
// write disjoint ranges and are joined before the kernel returns), and other threads read it
// only after that work has handed it over (returned it, or joined).
public final class FloatBuffer: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `shape.reduce(1, *)` floats, zero-filled unless `zeroed` is false.
    public init(shape: [Int], zeroed: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let n = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        precondition(n < Int.max / MemoryLayout<Float>.stride, "buffer of shape \(shape) is too large")
        self.shape = shape
        self.count = n
        // aligned_alloc wants a size that is a multiple of the alignment, and at least one byte.
        let bytes = max(bufferAlignment, (n * MemoryLayout<Float>.stride + bufferAlignment - 1) / bufferAlignment * bufferAlignment)
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, bufferAlignment, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes for a buffer of shape \(shape)")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(n, 1))
        if zeroed { memset(raw, 0, bytes) }
    }

    /// A buffer holding a copy of `values`, with the given shape (by default one dimension).
    public convenience init(_ values: [Float], shape: [Int]? = nil) {
        let s = shape ?? [values.count]
        self.init(shape: s, zeroed: false)
        precondition(count == values.count, "shape \(s) does not hold \(values.count) values")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { free(pointer) }

    public var view: TensorView { TensorView(pointer, shape: shape) }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    /// A copy of the contents, for tests and reporting (never in a hot loop).
    public func toArray() -> [Float] { Array(buffer) }
    public func fill(_ value: Float) { buffer.update(repeating: value) }
}

/// A non-owning, row-major view of floats with a shape: the form kernels take. The memory
/// belongs to a `FloatBuffer`, a mapped file or the caller, and must outlive the view.
// Unchecked Sendable: a view is a pointer and a shape, both constant; the memory it points to
// follows the ordering rule of its owner (`FloatBuffer`, a read-only mapping, or the caller).
public struct TensorView: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let shape: [Int]

    public init(_ pointer: UnsafeMutablePointer<Float>, shape: [Int]) {
        self.pointer = pointer
        self.shape = shape
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    /// Rows when viewed as a matrix: the product of every dimension but the last.
    public var rows: Int { shape.dropLast().reduce(1, *) }
    /// Columns when viewed as a matrix: the last dimension (1 for a scalar).
    public var cols: Int { shape.last ?? 1 }

    /// Rows `range` of the view seen as a `[rows, cols]` matrix.
    public func rows(_ range: Range<Int>) -> TensorView {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) outside 0..<\(rows)")
        return TensorView(pointer + range.lowerBound * cols, shape: [range.count, cols])
    }

    /// The same memory with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> TensorView {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return TensorView(pointer, shape: newShape)
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
