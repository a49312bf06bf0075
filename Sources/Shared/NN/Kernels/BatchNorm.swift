import Foundation

// Batch normalisation over NHWC activations, per channel.
//
// Training mode normalises with the statistics of the *global* batch (all ranks): every rank
// computes per-sample partial sums (in Double), the sums are combined by a `StatisticsSync` in an
// order that does not depend on how samples are spread over ranks, and every rank then normalises
// with identical numbers. This is what makes N ranks reproduce one rank bit for bit, and it is also
// what the paper's single-machine batch of 128 computed.

/// out[b, c] = Σ_p x[b, p, c] for each sample b (Double accumulation).
public func bnSampleSums<S: Real>(_ x: UnsafePointer<S>, batch: Int, positions: Int, channels: Int,
                           _ out: UnsafeMutablePointer<Double>) {
    ComputeThreads.parallelFor(batch) { b in
        let o = out + b * channels
        o.update(repeating: 0, count: channels)
        let xs = x + b * positions * channels
        for p in 0..<positions {
            let row = xs + p * channels
            for c in 0..<channels { o[c] += Double(row[c]) }
        }
    }
}

/// out[b, c] = Σ_p (x[b, p, c] − mean[c])² for each sample b (the two-pass variance).
public func bnSampleCenteredSquares<S: Real>(_ x: UnsafePointer<S>, _ mean: UnsafePointer<Double>, batch: Int,
                                      positions: Int, channels: Int, _ out: UnsafeMutablePointer<Double>) {
    ComputeThreads.parallelFor(batch) { b in
        let o = out + b * channels
        o.update(repeating: 0, count: channels)
        let xs = x + b * positions * channels
        for p in 0..<positions {
            let row = xs + p * channels
            for c in 0..<channels { let d = Double(row[c]) - mean[c]; o[c] += d * d }
        }
    }
}

/// y = (x − mean)·invStd·gamma + beta, optionally followed by ReLU. gamma nil means 1 (YAMNet).
public func bnApply<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                      gamma: UnsafePointer<S>?, beta: UnsafePointer<S>, rows: Int, channels: Int, relu: Bool) {
    let parts = min(64, max(1, rows / 16))
    ComputeThreads.parallelFor(parts) { part in
        let lo = part * rows / parts, hi = (part + 1) * rows / parts
        for r in lo..<hi {
            let xr = x + r * channels, yr = y + r * channels
            if let gamma {
                for c in 0..<channels { let v = (xr[c] - mean[c]) * invStd[c] * gamma[c] + beta[c]; yr[c] = relu && v <= 0 ? 0 : v }
            } else {
                for c in 0..<channels { let v = (xr[c] - mean[c]) * invStd[c] + beta[c]; yr[c] = relu && v <= 0 ? 0 : v }
            }
        }
    }
}

/// Per-sample sums for the backward pass: out[b, 0..<C] = Σ_p dŷ, out[b, C..<2C] = Σ_p dŷ·x̂,
/// where dŷ is the gradient at the normalised value (ReLU already applied to dy by the caller).
public func bnBackwardSampleSums<S: Real>(_ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                   batch: Int, positions: Int, channels: Int, _ out: UnsafeMutablePointer<Double>) {
    ComputeThreads.parallelFor(batch) { b in
        let o = out + b * 2 * channels
        o.update(repeating: 0, count: 2 * channels)
        let base = b * positions * channels
        for p in 0..<positions {
            let dr = dy + base + p * channels, xr = x + base + p * channels
            for c in 0..<channels {
                let d = Double(dr[c])
                o[c] += d
                o[channels + c] += d * Double((xr[c] - mean[c]) * invStd[c])
            }
        }
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
            for r in lo..<hi {
                let dr = dy + r * channels, xr = x + r * channels, o = dx + r * channels
                for c in 0..<channels { o[c] = a[c] * dr[c] + (b[c] * xr[c] + k[c]) }
            }
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
