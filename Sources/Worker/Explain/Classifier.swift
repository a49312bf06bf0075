import Foundation
import Shared

/// What every explanation method needs from a model: class probabilities for a batch of patches.
///
/// The methods are written against this protocol, not against `Network`, so that tests can
/// explain models whose true attributions are known by construction (a scorer that reads known
/// regions, a linear map over a known feature map) and check that the methods recover them.
public protocol PatchClassifier: AnyObject {
    var classes: Int { get }
    /// Patch shape: `frames` rows (time) × `bands` columns (mel), row-major.
    var frames: Int { get }
    var bands: Int { get }
    /// The largest batch one `probabilities` call should carry (the methods chunk by it).
    var maxBatch: Int { get }
    /// Class probabilities of `count` ≤ maxBatch patches: x (count × frames × bands) → out
    /// (count × classes). Throws when the model's output is not finite (numerical trouble).
    func probabilities(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Double>) throws
}

/// A classifier that can also give Grad-CAM what it needs.
public protocol GradCAMSource: PatchClassifier {
    /// For each of `count` ≤ maxBatch patches: the feature map A (h × w × c, NHWC) at `layer`
    /// and the gradient of class `targets[i]`'s score (the logit, before softmax) with respect to it.
    func featureGradients(_ x: UnsafePointer<Float>, count: Int, targets: [Int], layer: Tap) throws -> FeatureGradients
}

/// Feature maps and class-score gradients of a batch (count × h × w × c each).
public struct FeatureGradients: Sendable {
    public var count: Int, h: Int, w: Int, c: Int
    public var activations: [Float]
    public var gradients: [Float]

    public init(count: Int, h: Int, w: Int, c: Int, activations: [Float], gradients: [Float]) {
        precondition(activations.count == count * h * w * c && gradients.count == activations.count,
                     "feature maps of \(activations.count) and \(gradients.count) values for \(count) × \(h) × \(w) × \(c)")
        self.count = count
        self.h = h
        self.w = w
        self.c = c
        self.activations = activations
        self.gradients = gradients
    }
}

public struct ExplainError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The production classifier: a `Network` in inference mode (moving batch-norm statistics).
///
/// Generic over the engine's scalar so that the golden test can run it in float64; the protocol's
/// Float inputs are converted once per batch when S is Double.
public final class NetworkClassifier<S: Real>: GradCAMSource {
    public let net: Network<S>
    /// Batch-norm statistics: `.moving` for explanations; `.batch` only to reproduce training-mode
    /// references (the golden Grad-CAM gradient).
    public var bn: BatchNormMode = .moving
    public let maxBatch: Int
    private var converted: Buffer<S>?

    public init(_ net: Network<S>, maxBatch: Int = 128) {
        precondition(maxBatch >= 1)
        self.net = net
        self.maxBatch = maxBatch
    }

    public var classes: Int { net.config.classes }
    public var frames: Int { net.config.frames }
    public var bands: Int { net.config.bands }

    /// x as the network's scalar (no copy for Float).
    private func input(_ x: UnsafePointer<Float>, count: Int) -> UnsafePointer<S> {
        if S.self == Float.self { return UnsafeRawPointer(x).assumingMemoryBound(to: S.self) }
        let n = count * frames * bands
        if (converted?.count ?? -1) < n { converted = Buffer<S>(count: n) }
        let dst = converted!.pointer
        for i in 0..<n { dst[i] = S(x[i]) }
        return UnsafePointer(dst)
    }

    // Calls into the engine through its concrete types: Network's passes are specialised for
    // Float and Double in Shared, and a call from this generic class would otherwise run the
    // unspecialised generic code (measured 10× slower).
    private func forward(_ x: UnsafePointer<S>, count: Int) -> UnsafeMutablePointer<S> {
        if let n = net as? Network<Float> {
            return UnsafeMutableRawPointer(n.forward(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), batch: count, bn: bn))
                .assumingMemoryBound(to: S.self)
        }
        if let n = net as? Network<Double> {
            return UnsafeMutableRawPointer(n.forward(UnsafeRawPointer(x).assumingMemoryBound(to: Double.self), batch: count, bn: bn))
                .assumingMemoryBound(to: S.self)
        }
        return net.forward(x, batch: count, bn: bn)
    }

    private func backward(_ dlogits: UnsafePointer<S>, stopAt layer: Tap) -> UnsafeMutablePointer<S>? {
        if let n = net as? Network<Float> {
            return n.backward(UnsafeRawPointer(dlogits).assumingMemoryBound(to: Float.self), sink: nil, stopAt: layer)
                .map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: S.self) }
        }
        if let n = net as? Network<Double> {
            return n.backward(UnsafeRawPointer(dlogits).assumingMemoryBound(to: Double.self), sink: nil, stopAt: layer)
                .map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: S.self) }
        }
        return net.backward(dlogits, sink: nil, stopAt: layer)
    }

    private func checkFinite(_ logits: UnsafePointer<S>, count: Int) throws {
        for i in 0..<(count * classes) where !logits[i].isFinite {
            let where_ = net.firstNonFiniteActivation().map { "; the first non-finite activation is at \($0)" } ?? ""
            throw ExplainError("the network's output for patch \(i / classes) of the batch is not finite\(where_) (numerical trouble: check the input features and the weights)")
        }
    }

    public func probabilities(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Double>) throws {
        precondition(count >= 1 && count <= maxBatch, "batch of \(count) patches, at most \(maxBatch)")
        let logits = forward(input(x, count: count), count: count)
        try checkFinite(logits, count: count)
        let c = classes
        for b in 0..<count {
            let row = logits + b * c
            var m = -Double.infinity
            for k in 0..<c { m = max(m, Double(row[k])) }
            var sum = 0.0
            for k in 0..<c {
                let e = Foundation.exp(Double(row[k]) - m)
                out[b * c + k] = e
                sum += e
            }
            for k in 0..<c { out[b * c + k] /= sum }
        }
    }

    /// Feature map and class-score gradient at `layer`, in the network's own precision:
    /// forward, dlogits = one-hot of each patch's target, backward stopping at the layer.
    public func tapGradients(_ x: UnsafePointer<S>, count: Int, targets: [Int], layer: Tap)
        throws -> (activations: [S], gradients: [S], h: Int, w: Int, c: Int) {
        precondition(targets.count == count, "\(targets.count) targets for \(count) patches")
        guard net.taps.contains(layer) else {
            throw ExplainError("layer \(layer.rawValue) does not exist in \(net.config.architecture.rawValue) (it has \(net.taps.map(\.rawValue).joined(separator: ", ")))")
        }
        let logits = forward(x, count: count)
        try checkFinite(logits, count: count)
        guard let (act, h, w, c) = net.activation(layer) else { preconditionFailure("tap \(layer) listed but absent") }
        // The activation buffer is reused by the backward pass of other layers: copy it first.
        let n = count * h * w * c
        let activations = Array(UnsafeBufferPointer(start: act, count: n))
        var dlogits = [S](repeating: 0, count: count * classes)
        for (b, t) in targets.enumerated() {
            precondition(t >= 0 && t < classes, "target class \(t) of \(classes)")
            dlogits[b * classes + t] = 1
        }
        guard let grad = dlogits.withUnsafeBufferPointer({ backward($0.baseAddress!, stopAt: layer) }) else {
            preconditionFailure("backward did not stop at \(layer)")
        }
        let gradients = Array(UnsafeBufferPointer(start: grad, count: n))
        if let bad = gradients.firstIndex(where: { !$0.isFinite }) {
            throw ExplainError("the Grad-CAM gradient at \(layer.rawValue) is not finite (patch \(bad / (h * w * c)))")
        }
        return (activations, gradients, h, w, c)
    }

    public func featureGradients(_ x: UnsafePointer<Float>, count: Int, targets: [Int], layer: Tap) throws -> FeatureGradients {
        precondition(count >= 1 && count <= maxBatch, "batch of \(count) patches, at most \(maxBatch)")
        let r = try tapGradients(input(x, count: count), count: count, targets: targets, layer: layer)
        return FeatureGradients(count: count, h: r.h, w: r.w, c: r.c,
                                activations: r.activations.map { Float($0) }, gradients: r.gradients.map { Float($0) })
    }
}

/// Runs a classifier over many patches in batches of at most `maxBatch`, making each batch's
/// inputs on demand (LIME's perturbed copies, occlusion's windows) so that memory stays at one batch.
public struct BatchRunner {
    public let classifier: PatchClassifier
    /// Called between batches (rank 0 of the farm answers its workers there).
    public var poll: () -> Void
    private var buffer: [Float] = []
    private var probs: [Double] = []

    public init(_ classifier: PatchClassifier, poll: @escaping () -> Void = {}) {
        self.classifier = classifier
        self.poll = poll
    }

    /// Evaluates `count` inputs: `fill(i, destination)` writes input i (frames × bands);
    /// returns every input's class probabilities (count × classes).
    public mutating func run(count: Int, fill: (Int, UnsafeMutablePointer<Float>) -> Void) throws -> [Double] {
        let per = classifier.frames * classifier.bands, c = classifier.classes
        let batch = max(1, classifier.maxBatch)
        if buffer.count < min(batch, max(count, 1)) * per { buffer = [Float](repeating: 0, count: min(batch, max(count, 1)) * per) }
        if probs.count < batch * c { probs = [Double](repeating: 0, count: batch * c) }
        var out = [Double](repeating: 0, count: count * c)
        var start = 0
        while start < count {
            let n = min(batch, count - start)
            buffer.withUnsafeMutableBufferPointer { xb in
                let base = xb.baseAddress!
                // Building copies is cheap next to the forward pass but not free at 1000s per file.
                ComputeThreads.parallelFor(n) { k in fill(start + k, base + k * per) }
            }
            try buffer.withUnsafeBufferPointer { xb in
                try probs.withUnsafeMutableBufferPointer { pb in
                    try classifier.probabilities(xb.baseAddress!, count: n, into: pb.baseAddress!)
                }
            }
            for i in 0..<(n * c) { out[start * c + i] = probs[i] }
            start += n
            poll()
        }
        return out
    }
}
