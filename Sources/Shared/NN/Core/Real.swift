import CBLAS
import CKernels
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
    // The Winograd F(4×4, 3×3) transforms of CKernels for this type (ckernels.h, Winograd.swift).
    static func wino4Input(_ x: UnsafePointer<Self>, _ h: Int, _ w: Int, _ c: Int, _ ti: Int, _ tj: Int,
                           _ zeros: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>)
    static func wino4Output(_ m: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ h: Int, _ w: Int, _ c: Int,
                            _ ti: Int, _ tj: Int, _ bias: UnsafePointer<Self>?, _ relu: Bool)
    static func wino4Gradient(_ dy: UnsafePointer<Self>, _ h: Int, _ w: Int, _ c: Int, _ ti: Int, _ tj: Int,
                              _ out: UnsafeMutablePointer<Self>)
    static func wino4Kernel(_ g: UnsafePointer<Self>, _ u: UnsafeMutablePointer<Self>, _ cin: Int, _ cout: Int, _ ci: Int, _ rotate: Bool)
    static func wino4KernelGradient(_ acc: UnsafePointer<Self>, _ dg: UnsafeMutablePointer<Self>, _ cin: Int, _ cout: Int, _ ci: Int)
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
    @inline(__always) public static func wino4Input(_ x: UnsafePointer<Float>, _ h: Int, _ w: Int, _ c: Int, _ ti: Int, _ tj: Int,
                                                    _ zeros: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        ser_wino4_input_f32(x, h, w, c, ti, tj, zeros, out)
    }
    @inline(__always) public static func wino4Output(_ m: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ h: Int, _ w: Int, _ c: Int,
                                                     _ ti: Int, _ tj: Int, _ bias: UnsafePointer<Float>?, _ relu: Bool) {
        ser_wino4_output_f32(m, y, h, w, c, ti, tj, bias, relu ? 1 : 0)
    }
    @inline(__always) public static func wino4Gradient(_ dy: UnsafePointer<Float>, _ h: Int, _ w: Int, _ c: Int, _ ti: Int, _ tj: Int,
                                                       _ out: UnsafeMutablePointer<Float>) {
        ser_wino4_gradient_f32(dy, h, w, c, ti, tj, out)
    }
    @inline(__always) public static func wino4Kernel(_ g: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>, _ cin: Int, _ cout: Int,
                                                     _ ci: Int, _ rotate: Bool) {
        ser_wino4_kernel_f32(g, u, cin, cout, ci, rotate ? 1 : 0)
    }
    @inline(__always) public static func wino4KernelGradient(_ acc: UnsafePointer<Float>, _ dg: UnsafeMutablePointer<Float>, _ cin: Int,
                                                             _ cout: Int, _ ci: Int) {
        ser_wino4_kernel_gradient_f32(acc, dg, cin, cout, ci)
    }
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
    @inline(__always) public static func wino4Input(_ x: UnsafePointer<Double>, _ h: Int, _ w: Int, _ c: Int, _ ti: Int, _ tj: Int,
                                                    _ zeros: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>) {
        ser_wino4_input_f64(x, h, w, c, ti, tj, zeros, out)
    }
    @inline(__always) public static func wino4Output(_ m: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ h: Int, _ w: Int, _ c: Int,
                                                     _ ti: Int, _ tj: Int, _ bias: UnsafePointer<Double>?, _ relu: Bool) {
        ser_wino4_output_f64(m, y, h, w, c, ti, tj, bias, relu ? 1 : 0)
    }
    @inline(__always) public static func wino4Gradient(_ dy: UnsafePointer<Double>, _ h: Int, _ w: Int, _ c: Int, _ ti: Int, _ tj: Int,
                                                       _ out: UnsafeMutablePointer<Double>) {
        ser_wino4_gradient_f64(dy, h, w, c, ti, tj, out)
    }
    @inline(__always) public static func wino4Kernel(_ g: UnsafePointer<Double>, _ u: UnsafeMutablePointer<Double>, _ cin: Int, _ cout: Int,
                                                     _ ci: Int, _ rotate: Bool) {
        ser_wino4_kernel_f64(g, u, cin, cout, ci, rotate ? 1 : 0)
    }
    @inline(__always) public static func wino4KernelGradient(_ acc: UnsafePointer<Double>, _ dg: UnsafeMutablePointer<Double>, _ cin: Int,
                                                             _ cout: Int, _ ci: Int) {
        ser_wino4_kernel_gradient_f64(acc, dg, cin, cout, ci)
    }
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
