import Foundation

/// Mean squared error of a batch that is part of a global batch of `globalBatch` samples
/// (an autoencoder's reconstruction loss).
///
/// Per sample, L_b = (1/D) Σ_d (pred[b, d] − target[b, d])² (D = `features`); the training loss is
/// weight · mean_b L_b over the global batch. Returns the per-sample L_b (unweighted) and writes
/// dpred = weight · 2 (pred − target) / (D · globalBatch), the gradient of the weighted global mean,
/// so that ranks' gradients add up without rescaling (as `softmaxCrossEntropy`).
/// pred, target, dpred: (B, D).
@discardableResult
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func meanSquaredError<S: Real>(_ pred: UnsafePointer<S>, _ target: UnsafePointer<S>, batch: Int, features: Int,
                                      globalBatch: Int, weight: Double = 1, dpred: UnsafeMutablePointer<S>?) -> [Double] {
    var losses = [Double](repeating: 0, count: batch)
    let scale = weight * 2 / Double(features * max(1, globalBatch))
    for b in 0..<batch {
        var s = 0.0
        for d in 0..<features {
            let i = b * features + d
            let e = Double(pred[i]) - Double(target[i])
            s += e * e
            dpred?[i] = S(e * scale)
        }
        losses[b] = s / Double(features)
    }
    return losses
}
