import CMisalignKernels
import MisalignIO
import MisalignKernels

/// A linear layer's weight `W[out, in]` (Hugging Face orientation: y = x W^T), kept where it
/// lives: in the mapped safetensors file when its dtype and alignment allow, so a bf16 model
/// costs its file size in memory, not twice that.
///
/// `apply` picks the kernel by the number of rows of `x`: with few rows (decoding) the product
/// is bound by reading W, so bf16 weights are multiplied directly without widening; with many
/// rows (prefill, training) f32 and bf16 weights go to our packed kernel where the CPU has
/// AVX-512 (bf16 widened exactly, 12 rows at a time), or stay on the direct kernels where x
/// would leave the packed kernel's blocks half empty (`packedFits`). Elsewhere, and for f16, W
/// is widened to f32 a block of rows at a time and multiplied by `sgemm`, whose compute then
/// dominates the conversion.
// Unchecked Sendable: `storage` points into memory that `owner` keeps alive (a read-only
// mapping, a `FloatBuffer` or an `OwnedPointer`), filled before init returns and only read
// afterwards.
public struct LinearWeight: @unchecked Sendable {
    public enum Storage { case f32(UnsafePointer<Float>), bf16(UnsafePointer<UInt16>), f16(UnsafePointer<UInt16>) }
    public let out: Int
    public let inDim: Int
    public let storage: Storage
    /// Keeps the mapping or buffer behind `storage` alive.
    let owner: AnyObject

    /// Rows of `x` at or below which the weight is multiplied directly by the register-tiled
    /// kernel (W read once, no packing) instead of by sgemm, which copies W on every call. With
    /// 4 x 6 tiles the direct kernel is FMA-bound, and it stayed ahead of sgemm on every row
    /// count from 1 to 32 (`misalign-bench matmul`, 4864 x 896, one thread: 1.2-4x).
    static let directRows = 32
    /// The same for bf16 weights, whose direct kernel also saves widening W to f32.
    static let directRowsBF16 = 32
    /// Fewest rows of W widened per block on the sgemm path. Blocks are as large as 4 Mi
    /// weights, 16 MB of f32 (`trainingBlockRows`): each block is one sgemm call that packs x
    /// again, so small blocks made the 151,936-row lm_head 2,400 calls per decoding step.
    static let blockRows = 64

    public init(tensor: SafeTensor) throws {
        guard tensor.shape.count == 2 else { throw ModelError.wrongShape(name: tensor.name, expected: [-1, -1], found: tensor.shape) }
        out = tensor.shape[0]
        inDim = tensor.shape[1]
        switch tensor.dtype {
        case .f32:
            if let p = tensor.pointer(as: Float.self, dtype: .f32) {
                storage = .f32(p); owner = tensor.owner
            } else {
                let b = try tensor.floatBuffer()
                storage = .f32(UnsafePointer(b.pointer)); owner = b
            }
        case .bf16, .f16:
            let p: UnsafePointer<UInt16>
            if let aligned = tensor.pointer(as: UInt16.self, dtype: tensor.dtype) {
                p = aligned; owner = tensor.owner
            } else {
                let copy = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, tensor.elementCount))
                UnsafeMutableRawPointer(copy).copyMemory(from: tensor.bytes.baseAddress!, byteCount: tensor.bytes.count)
                p = UnsafePointer(copy); owner = OwnedPointer(copy)
            }
            storage = tensor.dtype == .bf16 ? .bf16(p) : .f16(p)
        default:
            throw ModelError.unsupportedDType(name: tensor.name, dtype: tensor.dtype)
        }
    }

    /// A weight over memory the caller keeps alive through `owner`.
    public init(f32 pointer: UnsafePointer<Float>, out: Int, inDim: Int, owner: AnyObject) {
        self.out = out; self.inDim = inDim; storage = .f32(pointer); self.owner = owner
    }

    public var dtype: DType {
        switch storage { case .f32: return .f32; case .bf16: return .bf16; case .f16: return .f16 }
    }

    /// The first element of W, whatever its dtype.
    var rawPointer: UnsafeRawPointer {
        switch storage {
        case .f32(let w): UnsafeRawPointer(w)
        case .bf16(let w), .f16(let w): UnsafeRawPointer(w)
        }
    }

    /// y[m, out] = x[m, in] W^T (+ y if `accumulate`). `ldx`, `ldy` are row strides.
    /// `scratch` must hold `scratchCount` floats. `blockRows` asks for sgemm (on widened blocks of
    /// that many rows of a bf16/f16 W) past 32 rows of x, instead of our own kernels.
    /// With `precision: .bf16` and bf16 storage, x is rounded to bf16 first (`ComputePrecision`).
    public func apply(x: UnsafePointer<Float>, ldx: Int, rows m: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                      accumulate: Bool = false, scratch: UnsafeMutablePointer<Float>, blockRows: Int? = nil,
                      precision: ComputePrecision = .f32) {
        let one = [GroupProduct(weight: self, y: y, ldy: ldy)]
        if Self.runOnPool(one, x: x, ldx: ldx, rows: m, accumulate: accumulate, precision: precision, packing: blockRows == nil) { return }
        if precision == .bf16, dtype == .bf16 {
            // No AVX512_BF16: the rounded input through the f32 paths.
            let rounded = FloatBuffer(shape: [m, inDim], zeroed: false)
            for r in 0..<m { misalign_round_to_bf16(rounded.pointer + r * inDim, x + r * ldx, inDim) }
            apply(x: rounded.pointer, ldx: inDim, rows: m, y: y, ldy: ldy, accumulate: accumulate, scratch: scratch, blockRows: blockRows)
            return
        }
        switch storage {
        case .f32(let w):
            BLAS.gemm(transB: true, m: m, n: out, k: inDim, a: x, lda: ldx, b: w, ldb: inDim,
                      beta: accumulate ? 1 : 0, c: y, ldc: ldy)
        case .bf16(let w), .f16(let w):
            let isBF16: Int32 = if case .bf16 = storage { 1 } else { 0 }
            var r0 = 0
            while r0 < out {
                let rows = min(blockRows ?? trainingBlockRows, out - r0)
                misalign_widen_rows(scratch, w + r0 * inDim, rows, inDim, isBF16)
                BLAS.gemm(transB: true, m: m, n: rows, k: inDim, a: x, lda: ldx, b: scratch, ldb: inDim,
                          beta: accumulate ? 1 : 0, c: y + r0, ldc: ldy)
                r0 += rows
            }
        }
    }

    /// One product of a group sharing its input: `y = x weight^T`, `y` with row stride `ldy`.
    public struct GroupProduct {
        public var weight: LinearWeight
        public var y: UnsafeMutablePointer<Float>
        public var ldy: Int
        public init(weight: LinearWeight, y: UnsafeMutablePointer<Float>, ldy: Int) {
            self.weight = weight; self.y = y; self.ldy = ldy
        }
    }

    /// `apply` for several weights that take the same x (a layer's q, k and v projections; gate
    /// and up). Where their kernel allows (the direct kernels, the packed kernel, the bf16 dot
    /// kernels: weights of one dtype and one `inDim`), all of them run as one job on the
    /// kernels' pool: their rows are dealt out as one list, the threads meet once instead of
    /// once per product, and x is rounded or packed once. Each product's result is the one
    /// `apply` gives it alone. Otherwise (sgemm, f16, mixed weights) they run one after another
    /// through `apply`.
    public static func apply(group: [GroupProduct], x: UnsafePointer<Float>, ldx: Int, rows m: Int, accumulate: Bool = false,
                             scratch: UnsafeMutablePointer<Float>, precision: ComputePrecision = .f32) {
        if runOnPool(group, x: x, ldx: ldx, rows: m, accumulate: accumulate, precision: precision) { return }
        for p in group {
            p.weight.apply(x: x, ldx: ldx, rows: m, y: p.y, ldy: p.ldy, accumulate: accumulate, scratch: scratch, precision: precision)
        }
    }

    /// The kernel choice of `apply`, for one product or a group over one x, run as one job on
    /// the kernels' spinning pool (`misalign_parallel`; BLAS is idle meanwhile, so the cores are
    /// not oversubscribed). Up to 32 rows the direct kernels (f32, bf16); where the CPU has
    /// AVX-512 (and `packing`), f32 products of f32 or bf16 weights at any number of rows, on the
    /// packed kernel where `packedFits`, else on the direct ones; bf16 products of bf16
    /// weights on the dot kernels: 32 tokens across the lanes where `dotFits` (twice sgemm's
    /// rate), lanes along k otherwise (`misalign-bench matmul`, one thread, 4864 x 896: 1.7x the
    /// f32-widening kernel at 1 row, 1.2-1.6x at 6-32). False, with
    /// nothing done, where none of them applies: sgemm's row counts without AVX-512, f16, weights
    /// of mixed dtype or `inDim`, bf16 products on a CPU without AVX512_BF16.
    private static func runOnPool(_ group: [GroupProduct], x: UnsafePointer<Float>, ldx: Int, rows m: Int, accumulate: Bool,
                                  precision: ComputePrecision, packing: Bool = true) -> Bool {
        guard let first = group.first else { return true }
        let inDim = first.weight.inDim, dtype = first.weight.dtype
        guard group.allSatisfy({ $0.weight.inDim == inDim && $0.weight.dtype == dtype }) else { return false }
        let bf16Products = precision == .bf16 && dtype == .bf16
        // With the packed kernel at hand, f32 products of f32 and bf16 weights never go to
        // sgemm: the packed kernel where x fills its blocks (`packedFits`), the direct one
        // otherwise, at any number of rows.
        let ownKernels = packing && packedAvailable
        let packed = (dtype == .f32 || (dtype == .bf16 && !bf16Products)) && ownKernels && packedFits(rows: m, dtype: dtype)
        switch dtype {
        case .f32 where m <= directRows || ownKernels, .bf16 where m <= directRowsBF16 || bf16Products || ownKernels: break
        default: return false
        }
        let threads = threads(forElements: group.reduce(0) { $0 + $1.weight.out } * inDim)
        let acc: Int32 = accumulate ? 1 : 0
        var products = group.map { misalign_product(w: $0.weight.rawPointer, out: $0.weight.out, y: $0.y, ldy: $0.ldy) }
        let count = products.count
        return products.withUnsafeMutableBufferPointer { pp in
            let base = pp.baseAddress
            if packed {
                return misalign_matmul_packed_group(dtype == .bf16 ? 1 : 0, base, count, x, ldx, m, inDim, acc, threads) == 1
            }
            if bf16Products {
                return dotFits(rows: m) && inDim % 2 == 0 // that kernel takes k in pairs
                    ? misalign_matmul_bf16_dot_group(base, count, x, ldx, m, inDim, acc, threads) == 1
                    : misalign_matmul_bf16_dot_rows_group(base, count, x, ldx, m, inDim, acc, threads) == 1
            }
            misalign_matmul_group_t(dtype == .bf16 ? 1 : 0, base, count, x, ldx, m, inDim, acc, threads)
            return true
        }
    }

    /// Whether f32 products of f32 and bf16 weights past 32 rows of x run on our kernels instead
    /// of sgemm, where the CPU has AVX-512: the packed kernel (`misalign_matmul_packed`: x packed,
    /// W read as stored, bf16 widened 12 rows at a time, 12 rows of W x 32 tokens per tile) where
    /// `packedFits`, the direct kernels otherwise. Over a Qwen2.5-0.5B layer's projections the
    /// packed kernel ran 1.05-1.11x OpenBLAS's Cooperlake sgemm (which packs W again on every
    /// call; `misalign-bench gemm`), and prefill of 256 tokens ran 1.09-1.16x the sgemm path on
    /// f32 weights, 1.17-1.31x the widening plus sgemm on bf16 weights. Off, both go to sgemm past
    /// 32 rows: for benchmarks that compare the two in one process (set it before work starts;
    /// it is read on every product, an atomic in the C kernels).
    package static var packedEnabled: Bool {
        get { misalign_f32_packed_enabled() != 0 }
        set { misalign_set_f32_packed_enabled(newValue ? 1 : 0) }
    }
    static var packedAvailable: Bool { packedEnabled && misalign_f32_packed_available() == 1 }

    /// Whether `m` rows of x go to the packed kernel (where the CPU has it) rather than the
    /// direct one: from 25 rows for f32 weights and 65 for bf16 (whose direct kernel reads half
    /// the bytes and kept up longer), and only where x fills the kernel's 32-token blocks to 3/4
    /// at least: x is padded to whole blocks, so 33 rows use 52% of the lanes. C harness, two
    /// threads, Qwen2.5-0.5B's projections, packed against direct: f32 0.86-0.95x at 24 rows,
    /// 1.06-1.34x at 28-32, 0.67-0.95x at 33-48, 1.11-1.33x at 64; bf16 0.62-0.87x up to 48 rows,
    /// 0.87-1.2x at 64, 0.93-1.18x at 96.
    static func packedFits(rows m: Int, dtype: DType) -> Bool {
        m >= (dtype == .bf16 ? 65 : 25) && fillsBlocks(m)
    }

    /// Whether bf16 products of `m` rows go to the dot kernel with 32 tokens across the lanes
    /// rather than the one with the lanes along k: the same rule as the packed kernel's for f32
    /// weights, for the same reason. C harness, two threads, Qwen2.5-0.5B's projections, the
    /// first against the second: 0.85-1.2x at 24 rows, 1.12-1.39x at 32, 0.59-1.0x at 33-40,
    /// 0.83-1.16x at 48, 1.09-1.49x at 64.
    static func dotFits(rows m: Int) -> Bool { m >= 25 && fillsBlocks(m) }

    /// Whether `m` rows fill the 32-row blocks they are padded to by 3/4 at least.
    static func fillsBlocks(_ m: Int) -> Bool { 4 * m >= 3 * ((m + 31) / 32 * 32) }

    /// The packed product of this weight alone (`applyWide`'s fast path), through `apply`'s
    /// kernel choice; false, with nothing done, where that would not pick it (f16, too few rows
    /// or blocks under 3/4 full, no AVX-512).
    func runPacked(x: UnsafePointer<Float>, ldx: Int, rows m: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) -> Bool {
        guard dtype == .f32 || dtype == .bf16, Self.packedFits(rows: m, dtype: dtype), Self.packedAvailable else { return false }
        return Self.runOnPool([GroupProduct(weight: self, y: y, ldy: ldy)], x: x, ldx: ldx, rows: m, accumulate: accumulate, precision: .f32)
    }

    /// Threads for a direct product over a W of `elements` entries: from 65,536 (with the
    /// spinning pool a split costs a few microseconds, so even the 128 x 896 k/v projections
    /// gain) every BLAS thread, below that one.
    static func threads(forElements elements: Int) -> Int { elements >= 1 << 16 ? max(1, BLAS.threads) : 1 }

    /// Floats of scratch `apply` needs.
    public var scratchCount: Int { trainingBlockRows * inDim }

    /// Row `r` of W as f32 (embedding lookup).
    public func row(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        switch storage {
        case .f32(let w): dst.update(from: w + r * inDim, count: inDim)
        case .bf16(let w): misalign_bf16_to_f32(dst, w + r * inDim, inDim)
        case .f16(let w): misalign_f16_to_f32(dst, w + r * inDim, inDim)
        }
    }
}

/// Frees a manually allocated pointer when the last reference goes.
// Unchecked Sendable: `pointer` is a constant; its memory is filled before the owner is made
// (`LinearWeight.init`'s copy) and only read afterwards, then freed in `deinit`, when no one
// holds the owner any more.
final class OwnedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { pointer = p }
    deinit { pointer.deallocate() }
}
