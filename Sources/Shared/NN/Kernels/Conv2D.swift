import Foundation

/// Shape of a 2-D convolution with TensorFlow's "SAME" padding, NHWC activations, HWIO kernels.
///
/// SAME: out = ceil(n / s), pad_total = max((out − 1)·s + k − n, 0), pad_before = ⌊pad_total / 2⌋.
/// For the stride-2 3×3 layers of YAMNet on even sizes this pads 0 rows before and 1 after,
/// unlike PyTorch's symmetric padding=1.
public struct ConvGeometry: Hashable, Sendable {
    public let h, w, cin, cout, kh, kw, stride: Int
    public let ho, wo, padTop, padLeft: Int

    public init(h: Int, w: Int, cin: Int, cout: Int, kh: Int, kw: Int, stride: Int) {
        self.h = h; self.w = w; self.cin = cin; self.cout = cout; self.kh = kh; self.kw = kw; self.stride = stride
        ho = (h + stride - 1) / stride
        wo = (w + stride - 1) / stride
        padTop = max((ho - 1) * stride + kh - h, 0) / 2
        padLeft = max((wo - 1) * stride + kw - w, 0) / 2
    }

    /// Columns of the im2col matrix: one kernel window, in HWIO order (kh, kw, cin).
    public var k: Int { kh * kw * cin }
    public var inSize: Int { h * w * cin }
    public var outPositions: Int { ho * wo }
    public var outSize: Int { ho * wo * cout }
    /// A 1×1 stride-1 convolution is a plain GEMM on the activations: no im2col.
    public var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 }
    /// VGGish's first layer: 3×3, stride 1, one input channel. im2col + GEMM would have K = 9,
    /// where the GEMM runs at a few percent of its peak; a direct loop is memory-bound instead.
    public var isSingleChannel3x3: Bool { kh == 3 && kw == 3 && stride == 1 && cin == 1 }
    public var flopsPerSample: Int { 2 * outPositions * k * cout }
}

/// Unfolds one sample's input windows into rows. x: (H, W, Cin) → col: (Ho·Wo, kh·kw·Cin).
@inline(__always)
public func im2col<S: Real>(_ x: UnsafePointer<S>, _ col: UnsafeMutablePointer<S>, _ g: ConvGeometry) {
    let cin = g.cin
    var row = col
    for i in 0..<g.ho {
        for j in 0..<g.wo {
            var dst = row
            for a in 0..<g.kh {
                let yi = i * g.stride - g.padTop + a
                for b in 0..<g.kw {
                    let xj = j * g.stride - g.padLeft + b
                    if yi >= 0 && yi < g.h && xj >= 0 && xj < g.w {
                        let src = x + (yi * g.w + xj) * cin
                        if cin == 1 { dst.pointee = src.pointee } else { dst.update(from: src, count: cin) }
                    } else {
                        dst.update(repeating: 0, count: cin)
                    }
                    dst += cin
                }
            }
            row += g.k
        }
    }
}

/// Adds unfolded window gradients back onto the input gradient. dcol: (Ho·Wo, k) → dx: (H, W, Cin) (accumulates).
@inline(__always)
public func col2imAdd<S: Real>(_ dcol: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, _ g: ConvGeometry) {
    let cin = g.cin
    var row = dcol
    for i in 0..<g.ho {
        for j in 0..<g.wo {
            var src = row
            for a in 0..<g.kh {
                let yi = i * g.stride - g.padTop + a
                for b in 0..<g.kw {
                    let xj = j * g.stride - g.padLeft + b
                    if yi >= 0 && yi < g.h && xj >= 0 && xj < g.w {
                        let dst = dx + (yi * g.w + xj) * cin
                        for c in 0..<cin { dst[c] += src[c] }
                    }
                    src += cin
                }
            }
            row += g.k
        }
    }
}

/// Samples per im2col workspace pass: the unfolded block stays near the cache size.
public func convSubBatch(_ g: ConvGeometry, _ batch: Int, _ elementSize: Int) -> Int {
    let perSample = g.outPositions * g.k * elementSize
    return max(1, min(batch, (12 << 20) / max(1, perSample)))
}

/// Convolution forward, any kernel/stride, via im2col and GEMM.
/// x: (B, H, W, Cin), w: (kh, kw, Cin, Cout), bias: (Cout) or nil → y: (B, Ho, Wo, Cout).
/// `relu` fuses the activation. `workspace` holds at least `convWorkspaceCount(g, batch)` elements.
public func convForward<S: Real>(_ x: UnsafePointer<S>, _ w: UnsafePointer<S>, _ bias: UnsafePointer<S>?,
                          _ y: UnsafeMutablePointer<S>, batch: Int, _ g: ConvGeometry, relu: Bool,
                          workspace: UnsafeMutablePointer<S>) {
    if g.isSingleChannel3x3 {
        ComputeThreads.parallelFor(batch) { s in
            S.conv3x3C1Forward(x + s * g.inSize, w, bias, y + s * g.outSize, g.h, g.w, g.cout, relu)
        }
        return
    }
    if g.isPointwise {
        S.gemm(false, false, batch * g.outPositions, g.cout, g.cin, 1, x, g.cin, w, g.cout, 0, y, g.cout)
    } else {
        let sub = convSubBatch(g, batch, MemoryLayout<S>.stride)
        var n0 = 0
        while n0 < batch {
            let n = min(sub, batch - n0)
            ComputeThreads.parallelFor(n) { s in
                im2col(x + (n0 + s) * g.inSize, workspace + s * g.outPositions * g.k, g)
            }
            S.gemm(false, false, n * g.outPositions, g.cout, g.k, 1, workspace, g.k, w, g.cout, 0,
                   y + n0 * g.outSize, g.cout)
            n0 += n
        }
    }
    biasRelu(y, bias, rows: batch * g.outPositions, channels: g.cout, relu: relu)
}

/// Workspace elements `convForward`/`convBackward*` need for `batch` samples.
public func convWorkspaceCount(_ g: ConvGeometry, _ batch: Int, _ elementSize: Int) -> Int {
    g.isPointwise ? 1 : convSubBatch(g, batch, elementSize) * g.outPositions * g.k
}

/// Input gradient of a convolution. dy: (B, Ho, Wo, Cout) → dx: (B, H, W, Cin) (overwritten).
public func convBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ w: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                               batch: Int, _ g: ConvGeometry, workspace: UnsafeMutablePointer<S>) {
    if g.isPointwise {
        S.gemm(false, true, batch * g.outPositions, g.cin, g.cout, 1, dy, g.cout, w, g.cout, 0, dx, g.cin)
        return
    }
    let sub = convSubBatch(g, batch, MemoryLayout<S>.stride)
    var n0 = 0
    while n0 < batch {
        let n = min(sub, batch - n0)
        S.gemm(false, true, n * g.outPositions, g.k, g.cout, 1, dy + n0 * g.outSize, g.cout, w, g.cout, 0, workspace, g.k)
        ComputeThreads.parallelFor(n) { s in
            let dxs = dx + (n0 + s) * g.inSize
            dxs.update(repeating: 0, count: g.inSize)
            col2imAdd(workspace + s * g.outPositions * g.k, dxs, g)
        }
        n0 += n
    }
}

/// Kernel and bias gradients over samples [0, batch) of the pointers given.
/// dw: (kh, kw, Cin, Cout), db: (Cout) — both overwritten (one determinism chunk's contribution).
public func convBackwardWeights<S: Real>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ dw: UnsafeMutablePointer<S>,
                                  _ db: UnsafeMutablePointer<S>?, batch: Int, _ g: ConvGeometry,
                                  workspace: UnsafeMutablePointer<S>) {
    if g.isSingleChannel3x3 {
        // Samples in order into one accumulator: the same sum whatever the thread count.
        dw.update(repeating: 0, count: g.k * g.cout)
        for s in 0..<batch { S.conv3x3C1BackwardWeights(x + s * g.inSize, dy + s * g.outSize, dw, g.h, g.w, g.cout) }
    } else if g.isPointwise {
        S.gemm(true, false, g.cin, g.cout, batch * g.outPositions, 1, x, g.cin, dy, g.cout, 0, dw, g.cout)
    } else {
        let sub = convSubBatch(g, batch, MemoryLayout<S>.stride)
        var n0 = 0
        while n0 < batch {
            let n = min(sub, batch - n0)
            ComputeThreads.parallelFor(n) { s in
                im2col(x + (n0 + s) * g.inSize, workspace + s * g.outPositions * g.k, g)
            }
            S.gemm(true, false, g.k, g.cout, n * g.outPositions, 1, workspace, g.k, dy + n0 * g.outSize, g.cout,
                   n0 == 0 ? 0 : 1, dw, g.cout)
            n0 += n
        }
    }
    if let db { columnSums(dy, db, rows: batch * g.outPositions, channels: g.cout) }
}

/// y[r, c] += bias[c] and optionally ReLU, over rows × channels. ReLU keeps NaN (v ≤ 0 is false for
/// NaN), so numerical trouble reaches the loss and is reported instead of being zeroed away.
@inline(__always)
public func biasRelu<S: Real>(_ y: UnsafeMutablePointer<S>, _ bias: UnsafePointer<S>?, rows: Int, channels: Int, relu: Bool) {
    guard bias != nil || relu else { return }
    ComputeThreads.parallelFor(min(rows, 64)) { part in
        let lo = part * rows / min(rows, 64), hi = (part + 1) * rows / min(rows, 64)
        for r in lo..<hi {
            let row = y + r * channels
            if let bias {
                if relu { for c in 0..<channels { let v = row[c] + bias[c]; row[c] = v <= 0 ? 0 : v } }
                else { for c in 0..<channels { row[c] += bias[c] } }
            } else {
                for c in 0..<channels where row[c] <= 0 { row[c] = 0 }
            }
        }
    }
}

/// out[c] = Σ_r m[r, c], summed in row order (deterministic).
@inline(__always)
public func columnSums<S: Real>(_ m: UnsafePointer<S>, _ out: UnsafeMutablePointer<S>, rows: Int, channels: Int) {
    out.update(repeating: 0, count: channels)
    for r in 0..<rows {
        let row = m + r * channels
        for c in 0..<channels { out[c] += row[c] }
    }
}

/// dy ⊙ (y > 0): ReLU's backward, in place on dy, from the stored post-activation output.
@inline(__always)
public func reluBackward<S: Real>(_ dy: UnsafeMutablePointer<S>, _ y: UnsafePointer<S>, count: Int) {
    let parts = min(64, max(1, count / 4096))
    ComputeThreads.parallelFor(parts) { p in
        let lo = p * count / parts, hi = (p + 1) * count / parts
        for i in lo..<hi where !(y[i] > 0) { dy[i] = 0 }
    }
}
