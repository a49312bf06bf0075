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
    // The direct kernels of CKernels (direct.inc), one sample per call.
    static func conv3x3C1Forward(_ x: UnsafePointer<Self>, _ k: UnsafePointer<Self>, _ bias: UnsafePointer<Self>?, _ y: UnsafeMutablePointer<Self>,
                                 _ h: Int, _ w: Int, _ cout: Int, _ relu: Bool)
    static func conv3x3C1BackwardWeights(_ x: UnsafePointer<Self>, _ dy: UnsafePointer<Self>, _ dk: UnsafeMutablePointer<Self>, _ h: Int, _ w: Int, _ cout: Int)
    static func maxPool2(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ idx: UnsafeMutablePointer<UInt8>?, _ h: Int, _ w: Int, _ c: Int,
                         _ relu: Bool)
    static func maxPool2Back(_ dy: UnsafePointer<Self>, _ idx: UnsafePointer<UInt8>, _ dx: UnsafeMutablePointer<Self>, _ h: Int, _ w: Int, _ c: Int)
    // Adam's elementwise update (adam.inc).
    static func adamUpdate(_ p: UnsafeMutablePointer<Self>, _ g: UnsafePointer<Self>, _ m: UnsafeMutablePointer<Self>, _ v: UnsafeMutablePointer<Self>,
                           _ previous: UnsafeMutablePointer<Self>?, _ n: Int, b1: Self, b2: Self, c1: Self, c2: Self, lr: Self, eps: Self)
    // The batch-normalisation passes of CKernels (batchnorm.inc).
    static func bnSumsAndSquares(_ x: UnsafePointer<Self>, _ positions: Int, _ channels: Int, _ out: UnsafeMutablePointer<Double>)
    static func bnApply(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ mean: UnsafePointer<Self>, _ istd: UnsafePointer<Self>,
                        _ gamma: UnsafePointer<Self>?, _ beta: UnsafePointer<Self>, _ rows: Int, _ channels: Int, _ relu: Bool)
    static func bnBackwardSums(_ dy: UnsafeMutablePointer<Self>, _ x: UnsafePointer<Self>, _ mean: UnsafePointer<Self>, _ istd: UnsafePointer<Self>,
                               _ gamma: UnsafePointer<Self>?, _ beta: UnsafePointer<Self>?, _ positions: Int, _ channels: Int,
                               _ out: UnsafeMutablePointer<Double>)
    static func bnBackwardData(_ dy: UnsafePointer<Self>, _ x: UnsafePointer<Self>, _ dx: UnsafeMutablePointer<Self>, _ a: UnsafePointer<Self>,
                               _ b: UnsafePointer<Self>, _ k: UnsafePointer<Self>, _ rows: Int, _ channels: Int)
}

extension Float: Real {
    @inline(__always)
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                            _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
                            _ b: UnsafePointer<Float>, _ ldb: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        guard m > 0, n > 0 else { return }
        if MatmulPrecision.useBF16(m: m, n: n, k: k) {
            ser_sgemm_bf16(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
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
    @inline(__always) public static func conv3x3C1Forward(_ x: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                                          _ y: UnsafeMutablePointer<Float>, _ h: Int, _ w: Int, _ cout: Int, _ relu: Bool) {
        ser_conv3x3_c1_forward_f32(x, k, bias, y, h, w, cout, relu ? 1 : 0)
    }
    @inline(__always) public static func conv3x3C1BackwardWeights(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dk: UnsafeMutablePointer<Float>,
                                                                  _ h: Int, _ w: Int, _ cout: Int) {
        ser_conv3x3_c1_backward_weights_f32(x, dy, dk, h, w, cout)
    }
    @inline(__always) public static func maxPool2(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ idx: UnsafeMutablePointer<UInt8>?,
                                                  _ h: Int, _ w: Int, _ c: Int, _ relu: Bool) {
        ser_maxpool2_forward_f32(x, y, idx, h, w, c, relu ? 1 : 0)
    }
    @inline(__always) public static func maxPool2Back(_ dy: UnsafePointer<Float>, _ idx: UnsafePointer<UInt8>, _ dx: UnsafeMutablePointer<Float>,
                                                      _ h: Int, _ w: Int, _ c: Int) {
        ser_maxpool2_backward_f32(dy, idx, dx, h, w, c)
    }
    @inline(__always) public static func adamUpdate(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                                                    _ v: UnsafeMutablePointer<Float>, _ previous: UnsafeMutablePointer<Float>?, _ n: Int,
                                                    b1: Float, b2: Float, c1: Float, c2: Float, lr: Float, eps: Float) {
        ser_adam_update_f32(p, g, m, v, previous, n, b1, b2, c1, c2, lr, eps)
    }
    @inline(__always) public static func bnSumsAndSquares(_ x: UnsafePointer<Float>, _ positions: Int, _ channels: Int, _ out: UnsafeMutablePointer<Double>) {
        ser_bn_sums_squares_f32(x, positions, channels, out)
    }
    @inline(__always) public static func bnApply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ mean: UnsafePointer<Float>,
                                                 _ istd: UnsafePointer<Float>, _ gamma: UnsafePointer<Float>?, _ beta: UnsafePointer<Float>,
                                                 _ rows: Int, _ channels: Int, _ relu: Bool) {
        ser_bn_apply_f32(x, y, mean, istd, gamma, beta, rows, channels, relu ? 1 : 0)
    }
    @inline(__always) public static func bnBackwardSums(_ dy: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
                                                        _ istd: UnsafePointer<Float>, _ gamma: UnsafePointer<Float>?, _ beta: UnsafePointer<Float>?,
                                                        _ positions: Int, _ channels: Int, _ out: UnsafeMutablePointer<Double>) {
        ser_bn_backward_sums_f32(dy, x, mean, istd, gamma, beta, positions, channels, out)
    }
    @inline(__always) public static func bnBackwardData(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                                        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                                                        _ rows: Int, _ channels: Int) {
        ser_bn_backward_data_f32(dy, x, dx, a, b, k, rows, channels)
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
    @inline(__always) public static func conv3x3C1Forward(_ x: UnsafePointer<Double>, _ k: UnsafePointer<Double>, _ bias: UnsafePointer<Double>?,
                                                          _ y: UnsafeMutablePointer<Double>, _ h: Int, _ w: Int, _ cout: Int, _ relu: Bool) {
        ser_conv3x3_c1_forward_f64(x, k, bias, y, h, w, cout, relu ? 1 : 0)
    }
    @inline(__always) public static func conv3x3C1BackwardWeights(_ x: UnsafePointer<Double>, _ dy: UnsafePointer<Double>, _ dk: UnsafeMutablePointer<Double>,
                                                                  _ h: Int, _ w: Int, _ cout: Int) {
        ser_conv3x3_c1_backward_weights_f64(x, dy, dk, h, w, cout)
    }
    @inline(__always) public static func maxPool2(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ idx: UnsafeMutablePointer<UInt8>?,
                                                  _ h: Int, _ w: Int, _ c: Int, _ relu: Bool) {
        ser_maxpool2_forward_f64(x, y, idx, h, w, c, relu ? 1 : 0)
    }
    @inline(__always) public static func maxPool2Back(_ dy: UnsafePointer<Double>, _ idx: UnsafePointer<UInt8>, _ dx: UnsafeMutablePointer<Double>,
                                                      _ h: Int, _ w: Int, _ c: Int) {
        ser_maxpool2_backward_f64(dy, idx, dx, h, w, c)
    }
    @inline(__always) public static func adamUpdate(_ p: UnsafeMutablePointer<Double>, _ g: UnsafePointer<Double>, _ m: UnsafeMutablePointer<Double>,
                                                    _ v: UnsafeMutablePointer<Double>, _ previous: UnsafeMutablePointer<Double>?, _ n: Int,
                                                    b1: Double, b2: Double, c1: Double, c2: Double, lr: Double, eps: Double) {
        ser_adam_update_f64(p, g, m, v, previous, n, b1, b2, c1, c2, lr, eps)
    }
    @inline(__always) public static func bnSumsAndSquares(_ x: UnsafePointer<Double>, _ positions: Int, _ channels: Int, _ out: UnsafeMutablePointer<Double>) {
        ser_bn_sums_squares_f64(x, positions, channels, out)
    }
    @inline(__always) public static func bnApply(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ mean: UnsafePointer<Double>,
                                                 _ istd: UnsafePointer<Double>, _ gamma: UnsafePointer<Double>?, _ beta: UnsafePointer<Double>,
                                                 _ rows: Int, _ channels: Int, _ relu: Bool) {
        ser_bn_apply_f64(x, y, mean, istd, gamma, beta, rows, channels, relu ? 1 : 0)
    }
    @inline(__always) public static func bnBackwardSums(_ dy: UnsafeMutablePointer<Double>, _ x: UnsafePointer<Double>, _ mean: UnsafePointer<Double>,
                                                        _ istd: UnsafePointer<Double>, _ gamma: UnsafePointer<Double>?, _ beta: UnsafePointer<Double>?,
                                                        _ positions: Int, _ channels: Int, _ out: UnsafeMutablePointer<Double>) {
        ser_bn_backward_sums_f64(dy, x, mean, istd, gamma, beta, positions, channels, out)
    }
    @inline(__always) public static func bnBackwardData(_ dy: UnsafePointer<Double>, _ x: UnsafePointer<Double>, _ dx: UnsafeMutablePointer<Double>,
                                                        _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ k: UnsafePointer<Double>,
                                                        _ rows: Int, _ channels: Int) {
        ser_bn_backward_data_f64(dy, x, dx, a, b, k, rows, channels)
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
