import Foundation

/// Dense layer forward. x: (B, in), w: (in, out), b: (out) → y: (B, out), ReLU optional.
public func denseForward<S: Real>(_ x: UnsafePointer<S>, _ w: UnsafePointer<S>, _ b: UnsafePointer<S>?, _ y: UnsafeMutablePointer<S>,
                           batch: Int, inputs: Int, outputs: Int, relu: Bool) {
    S.gemm(false, false, batch, outputs, inputs, 1, x, inputs, w, outputs, 0, y, outputs)
    biasRelu(y, b, rows: batch, channels: outputs, relu: relu)
}

/// dx = dy·wᵀ. dy: (B, out) → dx: (B, in).
public func denseBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ w: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                batch: Int, inputs: Int, outputs: Int) {
    S.gemm(false, true, batch, inputs, outputs, 1, dy, outputs, w, outputs, 0, dx, inputs)
}

/// dw = xᵀ·dy, db = Σ_b dy over samples [0, batch) (overwritten).
public func denseBackwardWeights<S: Real>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ dw: UnsafeMutablePointer<S>,
                                   _ db: UnsafeMutablePointer<S>?, batch: Int, inputs: Int, outputs: Int) {
    S.gemm(true, false, inputs, outputs, batch, 1, x, inputs, dy, outputs, 0, dw, outputs)
    if let db { columnSums(dy, db, rows: batch, channels: outputs) }
}

/// Softmax cross-entropy of a batch that is part of a global batch of `globalBatch` samples.
/// Returns the per-sample losses; writes dlogits = (softmax − onehot) / globalBatch, the gradient
/// of the global mean loss (so that summing ranks' gradients needs no rescaling).
public func softmaxCrossEntropy<S: Real>(_ logits: UnsafePointer<S>, labels: [Int], classes: Int, globalBatch: Int,
                                  dlogits: UnsafeMutablePointer<S>?) -> [Double] {
    var losses = [Double](repeating: 0, count: labels.count)
    let scale = 1 / Double(globalBatch)
    for b in 0..<labels.count {
        let row = logits + b * classes
        var m = Double(row[0])
        for c in 1..<classes { m = max(m, Double(row[c])) }
        var sum = 0.0
        for c in 0..<classes { sum += Foundation.exp(Double(row[c]) - m) }
        let lse = m + Foundation.log(sum)
        losses[b] = lse - Double(row[labels[b]])
        if let d = dlogits {
            for c in 0..<classes {
                let p = Foundation.exp(Double(row[c]) - lse)
                d[b * classes + c] = S((p - (c == labels[b] ? 1 : 0)) * scale)
            }
        }
    }
    return losses
}

/// Row-wise softmax probabilities (Double for stable averaging across a file's segments).
public func softmaxRows<S: Real>(_ logits: UnsafePointer<S>, batch: Int, classes: Int) -> [[Double]] {
    (0..<batch).map { b in
        let row = logits + b * classes
        var m = -Double.infinity
        for c in 0..<classes { m = max(m, Double(row[c])) }
        let e = (0..<classes).map { Foundation.exp(Double(row[$0]) - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

/// The training loss, for callers outside the engine.
public enum SoftmaxCrossEntropy {
    /// Per-sample losses of `labels.count` rows; writes dlogits = (softmax − onehot) / globalBatch.
    public static func compute<S: Real>(_ logits: UnsafePointer<S>, labels: [Int], classes: Int, globalBatch: Int,
                                        dlogits: UnsafeMutablePointer<S>?) -> [Double] {
        softmaxCrossEntropy(logits, labels: labels, classes: classes, globalBatch: globalBatch, dlogits: dlogits)
    }
}
