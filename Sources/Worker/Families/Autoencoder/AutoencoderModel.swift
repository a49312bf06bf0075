import Foundation
import Shared

/// The autoencoder family: an undercomplete autoencoder whose latent code feeds an emotion
/// classifier, trained on both losses at once.
///
///     x (D raw features) → x̂ = (x − μ)/σ  [+ ε ~ N(0, noise²) while training a DAE]
///     encoder/dense1   D → H, tanh                      h
///     encoder/latent   H → L, linear                    z   (the latent code)
///     classifier/dense1 L → K, tanh (K = 0: absent)     c
///     classifier/logits K (or L) → C                    logits
///     decoder/dense1   L → H, tanh                      d
///     decoder/output   H → D, linear                    r   (reconstruction of the clean x̂)
///
///     loss = w_r · mean_b (1/D)‖r − x̂‖² + w_c · mean_b CE(logits, y)
///
/// μ and σ (`input/mean`, `input/std`) are the training split's per-feature mean and standard
/// deviation: state tensors, saved with the weights. Tensors are declared in forward order and the
/// backward pass finishes them in exactly the reverse order (decoder, classifier, encoder).
public final class AutoencoderModel<S: Real> {
    public let inputs: Int
    public let classes: Int
    public let settings: AutoencoderSettings
    public let layout: ParameterLayout
    public let params: Parameters<S>
    public let arena = Arena<S>()

    let encoder1, latentLayer, decoder1, output, logitsLayer: DenseLayer
    let classifier1: DenseLayer?
    public private(set) var batch = 0

    public var latent: Int { settings.latent }

    public init(inputs: Int, classes: Int, settings: AutoencoderSettings) throws {
        guard classes >= 2 else { throw ModelError("a classifier needs at least 2 classes (got \(classes))") }
        guard settings.hidden >= 1 else { throw ModelError("--hidden must be at least 1 (got \(settings.hidden))") }
        guard settings.latent >= 1, settings.latent < inputs else {
            throw ModelError("--latent must be between 1 and \(inputs - 1) for an undercomplete autoencoder on \(inputs) features (got \(settings.latent))")
        }
        guard settings.classifierHidden >= 0 else { throw ModelError("--classifier-hidden must be 0 or more") }
        self.inputs = inputs
        self.classes = classes
        self.settings = settings
        let h = settings.hidden, l = settings.latent, k = settings.classifierHidden
        encoder1 = DenseLayer(name: "encoder/dense1", inputs: inputs, outputs: h)
        latentLayer = DenseLayer(name: "encoder/latent", inputs: h, outputs: l)
        classifier1 = k > 0 ? DenseLayer(name: "classifier/dense1", inputs: l, outputs: k) : nil
        logitsLayer = DenseLayer(name: "classifier/logits", inputs: k > 0 ? k : l, outputs: classes)
        decoder1 = DenseLayer(name: "decoder/dense1", inputs: l, outputs: h)
        output = DenseLayer(name: "decoder/output", inputs: h, outputs: inputs)
        var layout = ParameterLayout()
        layout.add("input/mean", [inputs], .zeros, state: true)
        layout.add("input/std", [inputs], .ones, state: true)
        for d in [encoder1, latentLayer] + [classifier1].compactMap({ $0 }) + [logitsLayer, decoder1, output] { d.declare(&layout) }
        self.layout = layout
        params = Parameters(layout: layout)
    }

    /// Random initial weights (He's rule, halved for the tanh and linear layers) and the identity
    /// normalisation.
    public func initialize(using rng: inout SeededGenerator) {
        params.initialize(using: &rng)
        for d in [encoder1, latentLayer, decoder1, output, logitsLayer] + [classifier1].compactMap({ $0 }) {
            d.scaleKernel(params, by: 0.5.squareRoot())
        }
    }

    /// Sets μ and σ (a σ of 0, a constant feature, becomes 1 so that the feature maps to 0).
    public func setNormalization(mean: [Double], std: [Double]) {
        precondition(mean.count == inputs && std.count == inputs)
        let m = params.value("input/mean"), s = params.value("input/std")
        for i in 0..<inputs {
            m[i] = S(mean[i])
            s[i] = S(std[i] > 1e-12 ? std[i] : 1)
        }
    }

    /// Runs the model on raw features x: (B, D). `noise` (B, D), in normalised units, is added to
    /// the encoder's input only (a DAE in training); the reconstruction target stays clean.
    /// Afterwards `code`, `reconstruction`, `logits` and `normalizedInput` hold this batch's values.
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func forward(_ x: UnsafePointer<S>, batch: Int, noise: UnsafePointer<S>? = nil) {
        self.batch = batch
        let d = inputs, n = batch * inputs
        let xn = arena.get("xn", n), xin = arena.get("xin", n)
        let m = params.value("input/mean"), s = params.value("input/std")
        for b in 0..<batch {
            for i in 0..<d { xn[b * d + i] = (x[b * d + i] - m[i]) / s[i] }
        }
        if let noise { for i in 0..<n { xin[i] = xn[i] + noise[i] } } else { xin.update(from: xn, count: n) }
        let h = arena.get("h", batch * settings.hidden)
        encoder1.forward(params, xin, h, batch: batch)
        tanhForward(h, h, count: batch * settings.hidden)
        let z = arena.get("z", batch * latent)
        latentLayer.forward(params, h, z, batch: batch)
        var top = UnsafePointer(z)
        if let c1 = classifier1 {
            let c = arena.get("c", batch * c1.outputs)
            c1.forward(params, z, c, batch: batch)
            tanhForward(c, c, count: batch * c1.outputs)
            top = UnsafePointer(c)
        }
        logitsLayer.forward(params, top, arena.get("logits", batch * classes), batch: batch)
        let dd = arena.get("d", batch * settings.hidden)
        decoder1.forward(params, z, dd, batch: batch)
        tanhForward(dd, dd, count: batch * settings.hidden)
        output.forward(params, dd, arena.get("r", n), batch: batch)
    }

    public var code: UnsafeMutablePointer<S> { arena.existing("z") }
    public var reconstruction: UnsafeMutablePointer<S> { arena.existing("r") }
    public var logits: UnsafeMutablePointer<S> { arena.existing("logits") }
    public var normalizedInput: UnsafeMutablePointer<S> { arena.existing("xn") }

    /// Both losses of the last forward pass, per sample (unweighted), and their weighted gradients
    /// for a batch that is part of a global batch of `globalBatch` samples.
    public func loss(labels: [Int], globalBatch: Int) -> (reconstruction: [Double], classification: [Double]) {
        precondition(labels.count == batch)
        let rec = meanSquaredError(reconstruction, normalizedInput, batch: batch, features: inputs, globalBatch: globalBatch,
                                   weight: settings.reconstructionWeight, dpred: arena.get("dr", batch * inputs))
        let dl = arena.get("dlogits", batch * classes)
        let ce = Kernels.softmaxCrossEntropy(logits, labels: labels, classes: classes, globalBatch: globalBatch, dlogits: dl)
        let w = S(settings.classificationWeight)
        for i in 0..<(batch * classes) { dl[i] *= w }
        return (rec, ce)
    }

    /// Backpropagates the gradients `loss` left in the arena; parameter gradients go to `sink`.
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func backward(sink: GradientSink<S>?) {
        let hsz = batch * settings.hidden
        // Decoder.
        let dd = arena.get("dd", hsz), d = arena.existing("d"), z = arena.existing("z")
        output.backward(params, x: d, dy: arena.existing("dr"), dx: dd, batch: batch, sink: sink)
        tanhBackward(dd, d, dd, count: hsz)
        let dz = arena.get("dz", batch * latent)
        decoder1.backward(params, x: z, dy: dd, dx: dz, batch: batch, sink: sink)
        // Classifier: its gradient at z is added to the decoder's.
        let dzc = arena.get("dzc", batch * latent)
        if let c1 = classifier1 {
            let c = arena.existing("c"), dc = arena.get("dc", batch * c1.outputs)
            logitsLayer.backward(params, x: c, dy: arena.existing("dlogits"), dx: dc, batch: batch, sink: sink)
            tanhBackward(dc, c, dc, count: batch * c1.outputs)
            c1.backward(params, x: z, dy: dc, dx: dzc, batch: batch, sink: sink)
        } else {
            logitsLayer.backward(params, x: z, dy: arena.existing("dlogits"), dx: dzc, batch: batch, sink: sink)
        }
        addInPlace(dz, dzc, count: batch * latent)
        // Encoder.
        let h = arena.existing("h"), dh = arena.get("dh", hsz)
        latentLayer.backward(params, x: h, dy: dz, dx: dh, batch: batch, sink: sink)
        tanhBackward(dh, h, dh, count: hsz)
        encoder1.backward(params, x: arena.existing("xin"), dy: dh, dx: nil, batch: batch, sink: sink)
    }

    /// Predicted class per sample of the last forward pass.
    public func predictions() -> [Int] {
        let l = logits
        return (0..<batch).map { b in (0..<classes).max { l[b * classes + $0] < l[b * classes + $1] }! }
    }
}
