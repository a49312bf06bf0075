import Foundation

// Squeeze-and-excitation (Hu et al. 2018) pieces: the squeeze is `globalAvgPool` (Pooling.swift)
// and two dense layers; what is new is the pool's backward and the channel-wise rescaling.

/// Backward of `globalAvgPool`: dx[b, p, c] = dy[b, c] / P. dy: (B, C) → dx: (B, P, C), overwritten.
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func globalAvgPoolBackward<S: Real>(_ dy: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, batch: Int, positions: Int, c: Int) {
    let inv = 1 / S(positions)
    ComputeThreads.parallelFor(batch) { n in
        let g = dy + n * c
        for p in 0..<positions {
            let row = dx + (n * positions + p) * c
            for ch in 0..<c { row[ch] = g[ch] * inv }
        }
    }
}

/// Channel rescaling (the excitation applied): y[b, p, c] = x[b, p, c] · s[b, c].
/// x: (B, P, C), s: (B, C) → y: (B, P, C) (y may be x).
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func channelScaleForward<S: Real>(_ x: UnsafePointer<S>, _ s: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>,
                                         batch: Int, positions: Int, c: Int) {
    ComputeThreads.parallelFor(batch) { n in
        let sc = s + n * c
        for p in 0..<positions {
            let o = (n * positions + p) * c
            for ch in 0..<c { y[o + ch] = x[o + ch] * sc[ch] }
        }
    }
}

/// Backward of `channelScaleForward`: dx = dy ⊙ s (broadcast over positions), ds[b, c] = Σ_p dy·x.
/// dx (B, P, C) and ds (B, C) are overwritten; dx may be dy.
@_specialize(exported: true, where S == Float)
@_specialize(exported: true, where S == Double)
public func channelScaleBackward<S: Real>(_ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, _ s: UnsafePointer<S>,
                                          _ dx: UnsafeMutablePointer<S>, _ ds: UnsafeMutablePointer<S>,
                                          batch: Int, positions: Int, c: Int) {
    ComputeThreads.parallelFor(batch) { n in
        let sc = s + n * c, d = ds + n * c
        d.update(repeating: 0, count: c)
        for p in 0..<positions {
            let o = (n * positions + p) * c
            for ch in 0..<c {
                let g = dy[o + ch]
                d[ch] += g * x[o + ch]
                dx[o + ch] = g * sc[ch]
            }
        }
    }
}
