import Foundation

/// Max-pool 2×2, stride 2, no padding (sizes are even). x: (B, H, W, C) → y: (B, H/2, W/2, C).
/// The loops are C (`direct.inc`): Swift's compare-and-select chains did not vectorise.
/// With `indices` (B, H/2, W/2, C) the pool records, for its backward, where each maximum came
/// from: the first arg-max in row-major window order (0–3), or 4 where `relu` says the ReLU
/// before the pool passes no gradient (a maximum that is not positive). The backward then reads
/// one byte per output instead of the pool's input, four times the output's size.
public func maxPool2Forward<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, indices: UnsafeMutablePointer<UInt8>? = nil,
                                     batch: Int, h: Int, w: Int, c: Int, relu: Bool = false) {
    let pooled = (h / 2) * (w / 2) * c
    ComputeThreads.parallelFor(batch) { n in
        S.maxPool2(x + n * h * w * c, y + n * pooled, indices.map { $0 + n * pooled }, h, w, c, relu)
    }
}

/// Max-pool backward (and that of the ReLU before the pool) from the forward's `indices`:
/// dy (B, H/2, W/2, C) goes to each window's arg-max; dx (B, H, W, C) is overwritten.
public func maxPool2Backward<S: Real>(_ dy: UnsafePointer<S>, indices: UnsafePointer<UInt8>, _ dx: UnsafeMutablePointer<S>,
                                      batch: Int, h: Int, w: Int, c: Int) {
    let pooled = (h / 2) * (w / 2) * c
    ComputeThreads.parallelFor(batch) { n in
        S.maxPool2Back(dy + n * pooled, indices + n * pooled, dx + n * h * w * c, h, w, c)
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
