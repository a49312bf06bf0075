import Foundation

// Batch normalisation over NHWC activations, per channel.
//
// Training mode normalises with the statistics of the *global* batch (all ranks): every rank
// computes per-sample partial sums of x and x² (in Double, one pass), the sums are combined by a
// `StatisticsSync` in an order that does not depend on how samples are spread over ranks, and every rank then normalises
// with identical numbers. This is what makes N ranks reproduce one rank bit for bit, and it is also
// what the paper's single-machine batch of 128 computed. The loops themselves are C
// (batchnorm.inc), where they vectorise (the Swift ones, with their float→double sums, did not
// reliably, and were an eighth of a bf16 training step).

/// out[b, 0..<C] = Σ_p x[b, p, c], out[b, C..<2C] = Σ_p x[b, p, c]² for each sample b (Double):
/// the rows from which `bnMoments` takes mean and variance.
public func bnSampleSumsAndSquares<S: Real>(_ x: UnsafePointer<S>, batch: Int, positions: Int, channels: Int,
                                     _ out: UnsafeMutablePointer<Double>) {
    ComputeThreads.parallelFor(batch) { b in
        S.bnSumsAndSquares(x + b * positions * channels, positions, channels, out + b * 2 * channels)
    }
}

/// Mean and (biased) variance per channel from the global column sums of `bnSampleSumsAndSquares`
/// rows over `count` values.
public func bnMoments(_ sums: [Double], channels c: Int, count: Double) -> (mean: [Double], variance: [Double]) {
    let mean = (0..<c).map { sums[$0] / count }
    return (mean, (0..<c).map { max(0, sums[c + $0] / count - mean[$0] * mean[$0]) })
}

/// Training mode's statistics from those column sums: the mean and 1/σ to normalise with, and with
/// `update` the moving statistics moved towards the batch's (moving ← m·moving + (1 − m)·batch).
public func bnTakeBatchStatistics<S: Real>(_ sums: [Double], channels c: Int, count: Double, epsilon: Double, momentum m: Double,
                                           update: Bool, mean: UnsafeMutablePointer<S>, invStd: UnsafeMutablePointer<S>,
                                           movingMean: UnsafeMutablePointer<S>, movingVariance: UnsafeMutablePointer<S>) {
    let moments = bnMoments(sums, channels: c, count: count)
    for ch in 0..<c {
        let (mu, variance) = (moments.mean[ch], moments.variance[ch])
        mean[ch] = S(mu)
        invStd[ch] = S(1 / (variance + epsilon).squareRoot())
        if update {
            movingMean[ch] = S(m * Double(movingMean[ch]) + (1 - m) * mu)
            movingVariance[ch] = S(m * Double(movingVariance[ch]) + (1 - m) * variance)
        }
    }
}

/// y = (x − mean)·invStd·gamma + beta, optionally followed by ReLU. gamma nil means 1 (YAMNet).
public func bnApply<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                      gamma: UnsafePointer<S>?, beta: UnsafePointer<S>, rows: Int, channels: Int, relu: Bool) {
    let parts = min(64, max(1, rows / 16))
    ComputeThreads.parallelFor(parts) { part in
        let lo = part * rows / parts, hi = (part + 1) * rows / parts
        S.bnApply(x + lo * channels, y + lo * channels, mean, invStd, gamma, beta, hi - lo, channels, relu)
    }
}

/// Per-sample sums for the backward pass: out[b, 0..<C] = Σ_p dŷ, out[b, C..<2C] = Σ_p dŷ·x̂,
/// where dŷ is the gradient at the normalised value (ReLU already applied to dy by the caller).
public func bnBackwardSampleSums<S: Real>(_ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                   batch: Int, positions: Int, channels: Int, _ out: UnsafeMutablePointer<Double>) {
    // Without a ReLU to mask by, the C pass only reads dy.
    bnReluBackwardSampleSums(UnsafeMutablePointer(mutating: dy), x, mean: mean, invStd: invStd, gamma: nil, beta: nil, batch: batch,
                             positions: positions, channels: channels, out)
}

/// `bnBackwardSampleSums` with the ReLU after the normalisation (`bnApply(…, gamma, beta, relu: true)`)
/// folded in: where the normalised value is not positive, dy is zeroed in place first, in the same
/// pass over memory. The mask is recomputed from x exactly as `bnApply` computed the ReLU's input,
/// so the ReLU's output is not read (one stream of memory fewer).
public func bnReluBackwardSampleSums<S: Real>(_ dy: UnsafeMutablePointer<S>, _ x: UnsafePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                       gamma: UnsafePointer<S>?, beta: UnsafePointer<S>?, batch: Int, positions: Int, channels: Int,
                                       _ out: UnsafeMutablePointer<Double>) {
    let size = positions * channels
    ComputeThreads.parallelFor(batch) { b in
        S.bnBackwardSums(dy + b * size, x + b * size, mean, invStd, gamma, beta, positions, channels, out + b * 2 * channels)
    }
}

/// dx = gamma·invStd·(dy − Σdy/N − x̂·Σ(dy·x̂)/N), the full training-mode backward (gradient flows
/// through the batch mean and variance). `sumDy`, `sumDyXhat` are global sums over N = count elements.
public func bnBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                             mean: UnsafePointer<S>, invStd: UnsafePointer<S>, gamma: UnsafePointer<S>?,
                             sumDy: UnsafePointer<S>, sumDyXhat: UnsafePointer<S>, count: Int, rows: Int, channels: Int) {
    // Per channel: dx = a·dy + b·x + k, with a = γσ⁻¹, b = −γσ⁻²·Σ(dy·x̂)/N (x̂ = (x − μ)σ⁻¹),
    // k = −γσ⁻¹·Σdy/N − b·μ: two multiply-adds per element.
    let invN = 1 / S(count)
    var a = [S](repeating: 0, count: channels), b = a, k = a
    for c in 0..<channels {
        let g = gamma.map { $0[c] } ?? 1
        a[c] = g * invStd[c]
        b[c] = -g * invStd[c] * invStd[c] * sumDyXhat[c] * invN
        k[c] = -g * invStd[c] * sumDy[c] * invN - b[c] * mean[c]
    }
    let parts = min(64, max(1, rows / 16))
    a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in k.withUnsafeBufferPointer { k in
        let a = a.baseAddress!, b = b.baseAddress!, k = k.baseAddress!
        ComputeThreads.parallelFor(parts) { part in
            let lo = part * rows / parts, hi = (part + 1) * rows / parts
            S.bnBackwardData(dy + lo * channels, x + lo * channels, dx + lo * channels, a, b, k, hi - lo, channels)
        }
    } } }
}

/// Inference-mode backward (fixed statistics): dx = dy·gamma·invStd.
public func bnBackwardDataFixed<S: Real>(_ dy: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, invStd: UnsafePointer<S>,
                                  gamma: UnsafePointer<S>?, rows: Int, channels: Int) {
    let parts = min(64, max(1, rows / 16))
    ComputeThreads.parallelFor(parts) { part in
        let lo = part * rows / parts, hi = (part + 1) * rows / parts
        for r in lo..<hi {
            let dr = dy + r * channels, o = dx + r * channels
            if let gamma { for c in 0..<channels { o[c] = dr[c] * invStd[c] * gamma[c] } }
            else { for c in 0..<channels { o[c] = dr[c] * invStd[c] } }
        }
    }
}
