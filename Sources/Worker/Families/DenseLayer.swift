import Foundation
import Shared

/// A dense layer's tensors (`<name>/kernel` (in, out), `<name>/bias` (out)) and its passes.
struct DenseLayer: Sendable {
    let name: String
    let inputs: Int
    let outputs: Int
    var kernel: String { name + "/kernel" }
    var bias: String { name + "/bias" }

    func declare(_ layout: inout ParameterLayout) {
        layout.add(kernel, [inputs, outputs], .heNormal, fanIn: inputs)
        layout.add(bias, [outputs], .zeros)
    }

    /// y = x·W + b (ReLU optional). x: (B, in) → y: (B, out).
    func forward<S: Real>(_ params: Parameters<S>, _ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, batch: Int, relu: Bool = false) {
        Kernels.denseForward(x, params.value(kernel), params.value(bias), y, batch: batch, inputs: inputs, outputs: outputs, relu: relu)
    }

    /// Kernel and bias gradients into `sink` (chunk by chunk), then dx = dy·Wᵀ if `dx` is given.
    func backward<S: Real>(_ params: Parameters<S>, x: UnsafePointer<S>, dy: UnsafePointer<S>, dx: UnsafeMutablePointer<S>?,
                           batch: Int, sink: GradientSink<S>?) {
        if let sink {
            let offset = params.layout.offsets[kernel]!
            precondition(params.layout.offsets[bias]! == offset + inputs * outputs, "\(bias) must follow \(kernel)")
            let (i, o) = (inputs, outputs)
            sink.accumulate(offset: offset, count: i * o + o, serially: { r, out in
                Kernels.denseBackwardWeights(x + r.lowerBound * i, dy + r.lowerBound * o, out, out + i * o, batch: r.count, inputs: i, outputs: o)
            })
        }
        if let dx { Kernels.denseBackwardData(dy, params.value(kernel), dx, batch: batch, inputs: inputs, outputs: outputs) }
    }

    /// Scales the kernel's initial values: He's N(0, 2/fan-in) suits ReLU; tanh layers want half
    /// the variance (LeCun's 1/fan-in), linear outputs likewise.
    func scaleKernel<S: Real>(_ params: Parameters<S>, by factor: Double) {
        let p = params.value(kernel)
        for k in 0..<(inputs * outputs) { p[k] = S(Double(p[k]) * factor) }
    }
}
