import Foundation

// Elementwise activations and the residual sum, for the model families (autoencoders, ResNet-SE).
// Each backward takes the stored *output* of its forward, so no pre-activation has to be kept.
// tanh and the logistic function go through Double: the libm versions are exact to an ulp and
// these layers are small next to the convolutions.

/// y = tanh(x), elementwise over `count` values (x and y may be the same buffer).
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func tanhForward<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, count: Int) {
    let parts = min(64, max(1, count / 8192))
    ComputeThreads.parallelFor(parts) { p in
        for i in (p * count / parts) ..< ((p + 1) * count / parts) { y[i] = S(Foundation.tanh(Double(x[i]))) }
    }
}

/// dx = dy ⊙ (1 − y²), from tanh's output y (dx may be dy).
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func tanhBackward<S: Real>(_ dy: UnsafePointer<S>, _ y: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, count: Int) {
    let parts = min(64, max(1, count / 8192))
    ComputeThreads.parallelFor(parts) { p in
        for i in (p * count / parts) ..< ((p + 1) * count / parts) { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    }
}

/// y = 1 / (1 + e^−x), elementwise (x and y may be the same buffer).
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func sigmoidForward<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, count: Int) {
    let parts = min(64, max(1, count / 8192))
    ComputeThreads.parallelFor(parts) { p in
        for i in (p * count / parts) ..< ((p + 1) * count / parts) {
            let v = Double(x[i])
            // Two branches keep e^(·) from overflowing for large |x|.
            y[i] = S(v >= 0 ? 1 / (1 + Foundation.exp(-v)) : Foundation.exp(v) / (1 + Foundation.exp(v)))
        }
    }
}

/// dx = dy ⊙ y(1 − y), from the logistic function's output y (dx may be dy).
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func sigmoidBackward<S: Real>(_ dy: UnsafePointer<S>, _ y: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, count: Int) {
    let parts = min(64, max(1, count / 8192))
    ComputeThreads.parallelFor(parts) { p in
        for i in (p * count / parts) ..< ((p + 1) * count / parts) { dx[i] = dy[i] * y[i] * (1 - y[i]) }
    }
}

/// Residual sum y = a + b, optionally followed by ReLU (a ResNet block's output). y may alias a or b.
/// Its backward is the ReLU mask (`reluBackward` on y) and then the same gradient to both inputs.
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func residualAdd<S: Real>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, count: Int, relu: Bool) {
    let parts = min(64, max(1, count / 8192))
    ComputeThreads.parallelFor(parts) { p in
        for i in (p * count / parts) ..< ((p + 1) * count / parts) {
            let v = a[i] + b[i]
            y[i] = relu && v <= 0 ? 0 : v
        }
    }
}

/// dst += src over `count` values (a gradient that reaches a tensor along a second path).
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func addInPlace<S: Real>(_ dst: UnsafeMutablePointer<S>, _ src: UnsafePointer<S>, count: Int) {
    let parts = min(64, max(1, count / 8192))
    ComputeThreads.parallelFor(parts) { p in
        for i in (p * count / parts) ..< ((p + 1) * count / parts) { dst[i] += src[i] }
    }
}
