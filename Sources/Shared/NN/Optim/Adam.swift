import Foundation

/// Adam (Kingma & Ba 2015) on the flat parameter buffer, as PyTorch writes it:
///   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,
///   θ ← θ − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε).
/// Elementwise and in a fixed order, so every rank applying it to the same gradient gets the
/// same parameters bit for bit. Both moments are part of the checkpoint.
public final class Adam<S: Real> {
    public struct Settings: Codable, Hashable, Sendable {
        public var learningRate: Double = 0.01
        public var beta1: Double = 0.9
        public var beta2: Double = 0.999
        public var epsilon: Double = 1e-8
        public init(learningRate: Double = 0.01, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
            self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        }
    }

    public let settings: Settings
    public let m: Buffer<S>
    public let v: Buffer<S>
    /// Updates applied so far (t in the bias corrections).
    public var step: Int = 0

    public init(count: Int, settings: Settings) {
        self.settings = settings
        m = Buffer(count: count)
        v = Buffer(count: count)
    }

    /// One update of `params` from `grads` over the given flat ranges (frozen ranges are left out).
    /// With `previous`, each updated parameter's old value is written there block by block while
    /// the block is in cache (a rollback point without a separate pass over the parameters).
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func update(_ params: Buffer<S>, _ grads: Buffer<S>, ranges: [Range<Int>], rateScale: Double = 1,
                       previous: UnsafeMutablePointer<S>? = nil) {
        step += 1
        let b1 = S(settings.beta1), b2 = S(settings.beta2)
        let c1 = S(1 - pow(settings.beta1, Double(step))), c2 = S(1 - pow(settings.beta2, Double(step)))
        let lr = S(settings.learningRate * rateScale), eps = S(settings.epsilon)
        let p = params.pointer, g = grads.pointer, mm = m.pointer, vv = v.pointer
        for range in ranges {
            let parts = max(1, min(64, range.count / 65536))
            ComputeThreads.parallelFor(parts) { part in
                let lo = range.lowerBound + part * range.count / parts
                let hi = range.lowerBound + (part + 1) * range.count / parts
                S.adamUpdate(p + lo, g + lo, mm + lo, vv + lo, previous.map { $0 + lo }, hi - lo, b1: b1, b2: b2, c1: c1, c2: c2, lr: lr, eps: eps)
            }
        }
    }
}
