import Foundation

/// Depthwise convolution (channel multiplier 1), TF SAME padding, NHWC.
/// x: (B, H, W, C), k: (kh, kw, C, 1) → y: (B, Ho, Wo, C). Loops run over channels innermost, so
/// the compiler vectorises them along NHWC's contiguous axis.
public func depthwiseForward<S: Real>(_ x: UnsafePointer<S>, _ k: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>,
                               batch: Int, _ g: ConvGeometry) {
    let c = g.cin
    ComputeThreads.parallelFor(batch) { n in
        let xs = x + n * g.inSize, ys = y + n * g.outSize
        for i in 0..<g.ho {
            for j in 0..<g.wo {
                let out = ys + (i * g.wo + j) * c
                out.update(repeating: 0, count: c)
                for a in 0..<g.kh {
                    let yi = i * g.stride - g.padTop + a
                    if yi < 0 || yi >= g.h { continue }
                    for b in 0..<g.kw {
                        let xj = j * g.stride - g.padLeft + b
                        if xj < 0 || xj >= g.w { continue }
                        let src = xs + (yi * g.w + xj) * c, kk = k + (a * g.kw + b) * c
                        for ch in 0..<c { out[ch] += src[ch] * kk[ch] }
                    }
                }
            }
        }
    }
}

/// Input gradient of the depthwise convolution. dy: (B, Ho, Wo, C) → dx: (B, H, W, C) (overwritten).
public func depthwiseBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ k: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                    batch: Int, _ g: ConvGeometry) {
    let c = g.cin
    ComputeThreads.parallelFor(batch) { n in
        let dys = dy + n * g.outSize, dxs = dx + n * g.inSize
        dxs.update(repeating: 0, count: g.inSize)
        for i in 0..<g.ho {
            for j in 0..<g.wo {
                let d = dys + (i * g.wo + j) * c
                for a in 0..<g.kh {
                    let yi = i * g.stride - g.padTop + a
                    if yi < 0 || yi >= g.h { continue }
                    for b in 0..<g.kw {
                        let xj = j * g.stride - g.padLeft + b
                        if xj < 0 || xj >= g.w { continue }
                        let dst = dxs + (yi * g.w + xj) * c, kk = k + (a * g.kw + b) * c
                        for ch in 0..<c { dst[ch] += d[ch] * kk[ch] }
                    }
                }
            }
        }
    }
}

/// Kernel gradient over samples [0, batch): dk: (kh, kw, C, 1), overwritten. Sums run in a fixed
/// order (sample, row, column), so one chunk's result never depends on threads or ranks.
public func depthwiseBackwardWeights<S: Real>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ dk: UnsafeMutablePointer<S>,
                                       batch: Int, _ g: ConvGeometry) {
    let c = g.cin
    let taps = g.kh * g.kw
    dk.update(repeating: 0, count: taps * c)
    // Each tap is independent: spread taps over threads.
    ComputeThreads.parallelFor(taps) { t in
        let a = t / g.kw, b = t % g.kw
        let acc = dk + t * c
        for n in 0..<batch {
            let xs = x + n * g.inSize, dys = dy + n * g.outSize
            for i in 0..<g.ho {
                let yi = i * g.stride - g.padTop + a
                if yi < 0 || yi >= g.h { continue }
                for j in 0..<g.wo {
                    let xj = j * g.stride - g.padLeft + b
                    if xj < 0 || xj >= g.w { continue }
                    let src = xs + (yi * g.w + xj) * c, d = dys + (i * g.wo + j) * c
                    for ch in 0..<c { acc[ch] += src[ch] * d[ch] }
                }
            }
        }
    }
}
