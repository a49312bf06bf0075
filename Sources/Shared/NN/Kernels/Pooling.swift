import Foundation

/// Max-pool 2×2, stride 2, no padding (sizes are even). x: (B, H, W, C) → y: (B, H/2, W/2, C).
/// The loops are C (`direct.inc`): Swift's compare-and-select chains did not vectorise.
public func maxPool2Forward<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, batch: Int, h: Int, w: Int, c: Int) {
    ComputeThreads.parallelFor(batch) { n in
        S.maxPool2(x + n * h * w * c, y + n * (h / 2) * (w / 2) * c, h, w, c)
    }
}

/// Max-pool backward fused with the ReLU before the pool: the gradient goes to the window's
/// arg-max (found again by comparing the stored input with the stored output, first match in
/// row-major window order, which saves an index tensor) if that maximum is positive; a
/// non-positive maximum means the ReLU output was 0 and passes no gradient. dx is overwritten.
public func maxPool2ReluBackward<S: Real>(_ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, _ y: UnsafePointer<S>,
                                          _ dx: UnsafeMutablePointer<S>, batch: Int, h: Int, w: Int, c: Int, relu: Bool) {
    let pooled = (h / 2) * (w / 2) * c
    ComputeThreads.parallelFor(batch) { n in
        S.maxPool2ReluBack(dy + n * pooled, x + n * h * w * c, y + n * pooled, dx + n * h * w * c, h, w, c, relu)
    }
}

/// Average pool k×k, stride k, no padding. x: (B, H, W, C) → y: (B, H/k, W/k, C).
public func avgPoolForward<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, batch: Int, h: Int, w: Int, c: Int, k: Int) {
    let ho = h / k, wo = w / k
    let inv = 1 / S(k * k)
    for n in 0..<batch {
        let xs = x + n * h * w * c, ys = y + n * ho * wo * c
        for i in 0..<ho {
            for j in 0..<wo {
                let o = ys + (i * wo + j) * c
                o.update(repeating: 0, count: c)
                for a in 0..<k {
                    for b in 0..<k {
                        let src = xs + ((i * k + a) * w + j * k + b) * c
                        for ch in 0..<c { o[ch] += src[ch] }
                    }
                }
                for ch in 0..<c { o[ch] *= inv }
            }
        }
    }
}

/// Average-pool backward, accumulating into dx (which may already hold another path's gradient).
public func avgPoolBackwardAdd<S: Real>(_ dy: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, batch: Int, h: Int, w: Int, c: Int, k: Int) {
    let ho = h / k, wo = w / k
    let inv = 1 / S(k * k)
    for n in 0..<batch {
        let dys = dy + n * ho * wo * c, dxs = dx + n * h * w * c
        for i in 0..<ho {
            for j in 0..<wo {
                let g = dys + (i * wo + j) * c
                for a in 0..<k {
                    for b in 0..<k {
                        let dst = dxs + ((i * k + a) * w + j * k + b) * c
                        for ch in 0..<c { dst[ch] += g[ch] * inv }
                    }
                }
            }
        }
    }
}

/// Mean over all positions: x: (B, P, C) → y: (B, C). (YAMNet's embedding.)
public func globalAvgPool<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, batch: Int, positions: Int, c: Int) {
    let inv = 1 / S(positions)
    for n in 0..<batch {
        let o = y + n * c
        o.update(repeating: 0, count: c)
        for p in 0..<positions {
            let row = x + (n * positions + p) * c
            for ch in 0..<c { o[ch] += row[ch] }
        }
        for ch in 0..<c { o[ch] *= inv }
    }
}

/// Nearest-neighbour upsampling ×f: y[h, w, c] = x[h/f, w/f, c]. x: (B, H, W, C) → y: (B, fH, fW, C),
/// written into channels [cOffset, cOffset + C) of a tensor with `yChannels` channels (so that a
/// depth concatenation needs no extra copy).
public func upsampleNearest<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, batch: Int, h: Int, w: Int, c: Int,
                              factor f: Int, yChannels: Int, cOffset: Int) {
    let ho = h * f, wo = w * f
    for n in 0..<batch {
        for i in 0..<ho {
            for j in 0..<wo {
                let src = x + ((n * h + i / f) * w + j / f) * c
                let dst = y + ((n * ho + i) * wo + j) * yChannels + cOffset
                dst.update(from: src, count: c)
            }
        }
    }
}

/// Backward of `upsampleNearest`: dx[h, w, c] = Σ of the f×f copies (overwrites dx).
public func upsampleNearestBackward<S: Real>(_ dy: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, batch: Int, h: Int, w: Int, c: Int,
                                      factor f: Int, yChannels: Int, cOffset: Int) {
    let ho = h * f, wo = w * f
    dx.update(repeating: 0, count: batch * h * w * c)
    for n in 0..<batch {
        for i in 0..<ho {
            for j in 0..<wo {
                let src = dy + ((n * ho + i) * wo + j) * yChannels + cOffset
                let dst = dx + ((n * h + i / f) * w + j / f) * c
                for ch in 0..<c { dst[ch] += src[ch] }
            }
        }
    }
}

/// Copies x (rows × c) into channels [cOffset, cOffset + c) of y (rows × yChannels), and back.
public func copyChannels<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, rows: Int, c: Int, yChannels: Int, cOffset: Int) {
    for r in 0..<rows { (y + r * yChannels + cOffset).update(from: x + r * c, count: c) }
}

public func extractChannels<S: Real>(_ y: UnsafePointer<S>, _ x: UnsafeMutablePointer<S>, rows: Int, c: Int, yChannels: Int, cOffset: Int) {
    for r in 0..<rows { (x + r * c).update(from: y + r * yChannels + cOffset, count: c) }
}
