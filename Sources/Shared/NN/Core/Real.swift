import CBLAS
import Foundation

/// The engine's scalar: Float for training and inference, Double for reference checks.
///
/// Every kernel is generic over `Real` so that the same code runs in float64 against the golden
/// gradients (which float32 cannot reproduce bit-closely through training-mode batch norm, see
/// shared/golden/README.md) and in float32 for speed. Public entry points are specialised for both.
public protocol Real: BinaryFloatingPoint, MPIScalar, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// C = alpha·op(A)·op(B) + beta·C, row-major. op(A) is m×k, op(B) is k×n, C is m×n.
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                     _ alpha: Self, _ a: UnsafePointer<Self>, _ lda: Int,
                     _ b: UnsafePointer<Self>, _ ldb: Int,
                     _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func sqrt(_ x: Self) -> Self
    static var dtypeName: String { get }
}

extension Float: Real {
    @inline(__always)
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                            _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
                            _ b: UnsafePointer<Float>, _ ldb: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { Foundation.log(x) }
    @inline(__always) public static func sqrt(_ x: Float) -> Float { x.squareRoot() }
    public static var dtypeName: String { "F32" }
}

extension Double: Real {
    @inline(__always)
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                            _ alpha: Double, _ a: UnsafePointer<Double>, _ lda: Int,
                            _ b: UnsafePointer<Double>, _ ldb: Int,
                            _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Foundation.log(x) }
    @inline(__always) public static func sqrt(_ x: Double) -> Double { x.squareRoot() }
    public static var dtypeName: String { "F64" }
}

/// A 64-byte aligned buffer owned by the engine (activations, parameters, workspaces).
public final class Buffer<S: Real>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<S>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<S>.stride, alignment: 64)
        pointer = raw.bindMemory(to: S.self, capacity: max(1, count))
        if zeroed { pointer.initialize(repeating: 0, count: max(1, count)) }
    }

    public convenience init(_ values: [S]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var array: [S] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public func zero() { pointer.update(repeating: 0, count: count) }
    public subscript(i: Int) -> S {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}
