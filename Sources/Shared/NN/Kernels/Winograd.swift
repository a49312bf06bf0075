import CKernels
import Foundation

// Winograd convolution (Lavin & Gray 2016) for 3×3, stride 1, SAME padding, on NHWC maps with
// even height and width — every VGGish convolution after the first.
//
// The output is cut into m×m tiles; each tile needs an (m+2)×(m+2) input patch, and
// Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A turns the 9·m² multiplies per tile and channel pair of a direct
// convolution into (m+2)², done as (m+2)² GEMMs, one per position p of the transform:
// M_p (T × Cout) = V_p (T × Cin) · U_p (Cin × Cout). The transforms are additions over
// channel vectors.
// - F(4×4, 3×3), where height and width divide by 4 (all of VGGish): 36 multiplies for 144,
//   4× less arithmetic. Its transforms are in C (CKernels/winograd4.inc) so that they vectorise.
//   Its float32 error is ~10× that of F(2×2), still ~1e-5 relative at VGGish's sizes
//   (WinogradTests measures both against the direct convolution).
// - F(2×2, 3×3) otherwise, with
//     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//     Aᵀ = [1 1 1 0; 0 1 −1 −1]: 16 multiplies for 36, 2.25× less.
//
// Backward: the input gradient is the same convolution of dY with the kernel rotated 180° and
// its channels swapped; the kernel gradient follows from the trilinear form
// Σ y⊙z = Σ U ⊙ V ⊙ (A z Aᵀ):  dg = Gᵀ[Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B)]G — (m+2)² GEMMs over tiles.
//
// Buffers per block of T tiles are laid out [tile][position][channel], so each tile's P × C
// values are contiguous for the transforms and each GEMM reads rows with a stride of P·C.

/// Which shapes the Winograd path handles.
public func winogradApplies(_ g: ConvGeometry) -> Bool {
    g.kh == 3 && g.kw == 3 && g.stride == 1 && g.h % 2 == 0 && g.w % 2 == 0 && g.cin >= 8
}

/// The output tile size the Winograd path uses for a shape unless told otherwise: 4 where
/// height and width divide by 4, else 2.
public func winogradTile(_ g: ConvGeometry) -> Int { g.h % 4 == 0 && g.w % 4 == 0 ? 4 : 2 }

/// Transform positions per tile, (m+2)².
@inline(__always) func winogradPositions(_ m: Int) -> Int { (m + 2) * (m + 2) }

/// Validates a requested tile size (nil: the shape's default).
func resolvedTile(_ tile: Int?, _ g: ConvGeometry) -> Int {
    let m = tile ?? winogradTile(g)
    precondition((m == 2 || m == 4) && g.h % m == 0 && g.w % m == 0, "Winograd tile \(m) does not fit \(g.h)×\(g.w)")
    return m
}

/// Tiles per block: one thread's transformed input and output stay within ~8 MB, so that the
/// threads' blocks share the L3 cache, and GEMMs keep at least 256 rows so that packing U_p is
/// amortised.
func winogradBlockTiles(_ g: ConvGeometry, totalTiles: Int, tile m: Int) -> Int {
    let perTile = winogradPositions(m) * (g.cin + g.cout) * 4
    return min(totalTiles, max(256, (8 << 20) / perTile))
}

/// The block size a pass uses: the same number of blocks as `winogradBlockTiles` gives, made
/// equal, so that no GEMM runs on a ragged remainder (a rank's 64 samples of conv4 are 384
/// tiles: two blocks of 192, not 256 and 128). Never larger than the workspace's blocks.
func winogradEvenBlockTiles(_ g: ConvGeometry, totalTiles: Int, tile m: Int) -> Int {
    let most = winogradBlockTiles(g, totalTiles: totalTiles, tile: m)
    let blocks = (totalTiles + most - 1) / max(1, most)
    return (totalTiles + blocks - 1) / max(1, blocks)
}

/// Workspace elements for the transforms of one block (V, M and U).
public func winogradWorkspaceCount(_ g: ConvGeometry, batch: Int, tile: Int? = nil) -> Int {
    let m = resolvedTile(tile, g), p = winogradPositions(m)
    let tiles = batch * (g.h / m) * (g.w / m)
    let t = winogradBlockTiles(g, totalTiles: tiles, tile: m)
    return p * t * (g.cin + g.cout) + p * g.cin * g.cout + max(g.cin, g.cout)
}

/// U[p][ci][co] = (G g Gᵀ)_p for a kernel g: (3, 3, Cin, Cout). With `rotate`, the kernel is turned
/// 180° (g[2−a][2−b]) for the input gradient, whose GEMMs read U transposed (the channel swap):
/// writing U in the kernel's own order keeps this transform's stores contiguous.
func winogradKernelTransform<S: Real>(_ w: UnsafePointer<S>, _ u: UnsafeMutablePointer<S>, cin: Int, cout: Int, rotate: Bool, tile: Int) {
    if tile == 4 {
        ComputeThreads.parallelFor(cin) { ci in S.wino4Kernel(w, u, cin, cout, ci, rotate) }
        return
    }
    let half = S(1) / 2
    let plane = cin * cout
    ComputeThreads.parallelFor(cin) { ci in
        for co in 0..<cout {
            @inline(__always) func g(_ a: Int, _ b: Int) -> S {
                let (sa, sb) = rotate ? (2 - a, 2 - b) : (a, b)
                return w[((sa * 3 + sb) * cin + ci) * cout + co]
            }
            let out = u + ci * cout + co
            // G g: rows (g0, (g0+g1+g2)/2, (g0−g1+g2)/2, g2) per column b.
            var t = (S(0), S(0), S(0), S(0), S(0), S(0), S(0), S(0), S(0), S(0), S(0), S(0))
            t.0 = g(0, 0); t.1 = g(0, 1); t.2 = g(0, 2)
            t.3 = (g(0, 0) + g(1, 0) + g(2, 0)) * half; t.4 = (g(0, 1) + g(1, 1) + g(2, 1)) * half; t.5 = (g(0, 2) + g(1, 2) + g(2, 2)) * half
            t.6 = (g(0, 0) - g(1, 0) + g(2, 0)) * half; t.7 = (g(0, 1) - g(1, 1) + g(2, 1)) * half; t.8 = (g(0, 2) - g(1, 2) + g(2, 2)) * half
            t.9 = g(2, 0); t.10 = g(2, 1); t.11 = g(2, 2)
            @inline(__always) func row(_ i: Int, _ x0: S, _ x1: S, _ x2: S) {
                out[(i * 4 + 0) * plane] = x0
                out[(i * 4 + 1) * plane] = (x0 + x1 + x2) * half
                out[(i * 4 + 2) * plane] = (x0 - x1 + x2) * half
                out[(i * 4 + 3) * plane] = x2
            }
            row(0, t.0, t.1, t.2)
            row(1, t.3, t.4, t.5)
            row(2, t.6, t.7, t.8)
            row(3, t.9, t.10, t.11)
        }
    }
}

/// V[t][p][c] = (Bᵀ d B)_p for the 4×4 input patch of each tile in [t0, t0 + count).
/// Rows or columns of the patch that fall in the padding read from a row of zeros.
@inline(__always)
func winogradInputTransform<S: Real>(_ x: UnsafePointer<S>, _ v: UnsafeMutablePointer<S>, t0: Int, count: Int,
                                     h: Int, w: Int, c: Int, zeros: UnsafePointer<S>, tile: Int) {
    if tile == 4 {
        let tw = w / 4, perSample = (h / 4) * tw
        ComputeThreads.parallelFor(count) { k in
            let t = t0 + k, n = t / perSample
            S.wino4Input(x + n * h * w * c, h, w, c, (t % perSample) / tw, t % tw, zeros, v + k * 36 * c)
        }
        return
    }
    let th = h / 2, tw = w / 2, perSample = th * tw
    ComputeThreads.parallelFor(count) { k in
        let t = t0 + k
        let n = t / perSample, ti = (t % perSample) / tw, tj = t % tw
        let xs = x + n * h * w * c
        let out = v + k * 16 * c
        // Pointer to element (row a, column b) of the patch: the zero row for padding.
        @inline(__always) func at(_ a: Int, _ b: Int) -> UnsafePointer<S> {
            let yi = 2 * ti - 1 + a, xj = 2 * tj - 1 + b
            return (yi >= 0 && yi < h && xj >= 0 && xj < w) ? xs + (yi * w + xj) * c : zeros
        }
        let p00 = at(0, 0), p01 = at(0, 1), p02 = at(0, 2), p03 = at(0, 3)
        let p10 = at(1, 0), p11 = at(1, 1), p12 = at(1, 2), p13 = at(1, 3)
        let p20 = at(2, 0), p21 = at(2, 1), p22 = at(2, 2), p23 = at(2, 3)
        let p30 = at(3, 0), p31 = at(3, 1), p32 = at(3, 2), p33 = at(3, 3)
        for ch in 0..<c {
            // Bᵀ over rows, for each of the 4 columns.
            let a00 = p00[ch] - p20[ch], a01 = p01[ch] - p21[ch], a02 = p02[ch] - p22[ch], a03 = p03[ch] - p23[ch]
            let a10 = p10[ch] + p20[ch], a11 = p11[ch] + p21[ch], a12 = p12[ch] + p22[ch], a13 = p13[ch] + p23[ch]
            let a20 = p20[ch] - p10[ch], a21 = p21[ch] - p11[ch], a22 = p22[ch] - p12[ch], a23 = p23[ch] - p13[ch]
            let a30 = p10[ch] - p30[ch], a31 = p11[ch] - p31[ch], a32 = p12[ch] - p32[ch], a33 = p13[ch] - p33[ch]
            // B over columns.
            out[ch] = a00 - a02; out[c + ch] = a01 + a02; out[2 * c + ch] = a02 - a01; out[3 * c + ch] = a01 - a03
            out[4 * c + ch] = a10 - a12; out[5 * c + ch] = a11 + a12; out[6 * c + ch] = a12 - a11; out[7 * c + ch] = a11 - a13
            out[8 * c + ch] = a20 - a22; out[9 * c + ch] = a21 + a22; out[10 * c + ch] = a22 - a21; out[11 * c + ch] = a21 - a23
            out[12 * c + ch] = a30 - a32; out[13 * c + ch] = a31 + a32; out[14 * c + ch] = a32 - a31; out[15 * c + ch] = a31 - a33
        }
    }
}

/// Y tile = Aᵀ m A for each tile, plus bias and ReLU, written into y: (B, H, W, C).
@inline(__always)
func winogradOutputTransform<S: Real>(_ m: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, bias: UnsafePointer<S>?, relu: Bool,
                                      t0: Int, count: Int, h: Int, w: Int, c: Int, tile: Int) {
    if tile == 4 {
        let tw = w / 4, perSample = (h / 4) * tw
        ComputeThreads.parallelFor(count) { k in
            let t = t0 + k, n = t / perSample
            S.wino4Output(m + k * 36 * c, y + n * h * w * c, h, w, c, (t % perSample) / tw, t % tw, bias, relu)
        }
        return
    }
    let th = h / 2, tw = w / 2, perSample = th * tw
    ComputeThreads.parallelFor(count) { k in
        let t = t0 + k
        let n = t / perSample, ti = (t % perSample) / tw, tj = t % tw
        let src = m + k * 16 * c
        let o00 = y + ((n * h + 2 * ti) * w + 2 * tj) * c, o01 = o00 + c, o10 = o00 + w * c, o11 = o10 + c
        for ch in 0..<c {
            // Aᵀ over rows: s = m0 + m1 + m2, d = m1 − m2 − m3 (per column), then over columns.
            let m00 = src[0 * c + ch], m01 = src[1 * c + ch], m02 = src[2 * c + ch], m03 = src[3 * c + ch]
            let m10 = src[4 * c + ch], m11 = src[5 * c + ch], m12 = src[6 * c + ch], m13 = src[7 * c + ch]
            let m20 = src[8 * c + ch], m21 = src[9 * c + ch], m22 = src[10 * c + ch], m23 = src[11 * c + ch]
            let m30 = src[12 * c + ch], m31 = src[13 * c + ch], m32 = src[14 * c + ch], m33 = src[15 * c + ch]
            let s0 = m00 + m10 + m20, s1 = m01 + m11 + m21, s2 = m02 + m12 + m22, s3 = m03 + m13 + m23
            let d0 = m10 - m20 - m30, d1 = m11 - m21 - m31, d2 = m12 - m22 - m32, d3 = m13 - m23 - m33
            var y00 = s0 + s1 + s2, y01 = s1 - s2 - s3, y10 = d0 + d1 + d2, y11 = d1 - d2 - d3
            if let bias { let b = bias[ch]; y00 += b; y01 += b; y10 += b; y11 += b }
            if relu {
                y00 = y00 <= 0 ? 0 : y00; y01 = y01 <= 0 ? 0 : y01; y10 = y10 <= 0 ? 0 : y10; y11 = y11 <= 0 ? 0 : y11
            }
            o00[ch] = y00; o01[ch] = y01; o10[ch] = y10; o11[ch] = y11
        }
    }
}

/// Z[t][p][c] = (A dy Aᵀ)_p for the 2×2 output-gradient block of each tile.
@inline(__always)
func winogradGradientTransform<S: Real>(_ dy: UnsafePointer<S>, _ z: UnsafeMutablePointer<S>, t0: Int, count: Int, h: Int, w: Int, c: Int,
                                        tile: Int) {
    if tile == 4 {
        let tw = w / 4, perSample = (h / 4) * tw
        ComputeThreads.parallelFor(count) { k in
            let t = t0 + k, n = t / perSample
            S.wino4Gradient(dy + n * h * w * c, h, w, c, (t % perSample) / tw, t % tw, z + k * 36 * c)
        }
        return
    }
    let th = h / 2, tw = w / 2, perSample = th * tw
    ComputeThreads.parallelFor(count) { k in
        let t = t0 + k
        let n = t / perSample, ti = (t % perSample) / tw, tj = t % tw
        let i00 = dy + ((n * h + 2 * ti) * w + 2 * tj) * c, i01 = i00 + c, i10 = i00 + w * c, i11 = i10 + c
        let out = z + k * 16 * c
        for ch in 0..<c {
            // A = [1 0; 1 1; 1 −1; 0 −1] applied to rows, then columns.
            let a = i00[ch], b = i01[ch], d = i10[ch], e = i11[ch]
            @inline(__always) func row(_ i: Int, _ r0: S, _ r1: S) {
                out[(i * 4 + 0) * c + ch] = r0
                out[(i * 4 + 1) * c + ch] = r0 + r1
                out[(i * 4 + 2) * c + ch] = r0 - r1
                out[(i * 4 + 3) * c + ch] = -r1
            }
            row(0, a, b)
            row(1, a + d, b + e)
            row(2, a - d, b - e)
            row(3, -d, -e)
        }
    }
}

/// Forward (and, with a rotated kernel transform read transposed, the input gradient) by Winograd.
/// x: (B, H, W, Cin) → y: (B, H, W, Cout); `u` is the kernel transform [P][Cin][Cout], or with
/// `transposed` [P][Cout][Cin].
func winogradConvolve<S: Real>(_ x: UnsafePointer<S>, _ u: UnsafePointer<S>, _ bias: UnsafePointer<S>?, _ y: UnsafeMutablePointer<S>,
                               batch: Int, h: Int, w: Int, cin: Int, cout: Int, relu: Bool, tile m: Int, transposed: Bool,
                               workspace: UnsafeMutablePointer<S>, zeros: UnsafePointer<S>) {
    let g = ConvGeometry(h: h, w: w, cin: cin, cout: cout, kh: 3, kw: 3, stride: 1)
    let tiles = batch * (h / m) * (w / m), p = winogradPositions(m)
    let blockTiles = winogradEvenBlockTiles(g, totalTiles: tiles, tile: m)
    let v = workspace, mm = workspace + p * blockTiles * cin
    var t0 = 0
    while t0 < tiles {
        let n = min(blockTiles, tiles - t0)
        winogradInputTransform(x, v, t0: t0, count: n, h: h, w: w, c: cin, zeros: zeros, tile: m)
        for q in 0..<p {
            S.gemm(false, transposed, n, cout, cin, 1, v + q * cin, p * cin, u + q * cin * cout, transposed ? cin : cout,
                   0, mm + q * cout, p * cout)
        }
        winogradOutputTransform(mm, y, bias: bias, relu: relu, t0: t0, count: n, h: h, w: w, c: cout, tile: m)
        t0 += n
    }
}

/// The end of the workspace: P·Cin·Cout elements for U (or Ŵ), then a zeroed row of
/// max(Cin, Cout) that stands for the padding.
func winogradTail<S: Real>(_ workspace: UnsafeMutablePointer<S>, _ g: ConvGeometry, batch: Int, tile m: Int)
    -> (UnsafeMutablePointer<S>, UnsafeMutablePointer<S>) {
    let zeros = workspace + winogradWorkspaceCount(g, batch: batch, tile: m) - max(g.cin, g.cout)
    zeros.update(repeating: 0, count: max(g.cin, g.cout))
    return (zeros - winogradPositions(m) * g.cin * g.cout, zeros)
}

/// Elements of a kernel transform U: (m+2)² positions × Cin × Cout.
public func winogradKernelCount(_ g: ConvGeometry, tile: Int? = nil) -> Int {
    winogradPositions(resolvedTile(tile, g)) * g.cin * g.cout
}

/// The kernel transform that `winogradForward(transformed:)` (`rotate` false) or
/// `winogradBackwardData(transformed:)` (`rotate` true) multiplies by. It depends only on the
/// weights, so a pass computes it once per layer and every chunk and slice reuses it: recomputing
/// it per call wrote conv4_2's 38 MB again for every chunk.
public func winogradTransformKernel<S: Real>(_ w: UnsafePointer<S>, into u: UnsafeMutablePointer<S>, _ g: ConvGeometry, rotate: Bool,
                                             tile: Int? = nil) {
    winogradKernelTransform(w, u, cin: g.cin, cout: g.cout, rotate: rotate, tile: resolvedTile(tile, g))
}

/// 3×3 stride-1 SAME convolution forward by Winograd. w: (3, 3, Cin, Cout). `tile` (2 or 4)
/// overrides the shape's default output tile; the workspace must be sized for the same tile.
public func winogradForward<S: Real>(_ x: UnsafePointer<S>, _ w: UnsafePointer<S>, _ bias: UnsafePointer<S>?, _ y: UnsafeMutablePointer<S>,
                                     batch: Int, _ g: ConvGeometry, relu: Bool, workspace: UnsafeMutablePointer<S>, tile: Int? = nil) {
    let m = resolvedTile(tile, g)
    let (u, _) = winogradTail(workspace, g, batch: batch, tile: m)
    winogradKernelTransform(w, u, cin: g.cin, cout: g.cout, rotate: false, tile: m)
    winogradForward(x, transformed: u, bias, y, batch: batch, g, relu: relu, workspace: workspace, tile: m)
}

/// The forward with the kernel already transformed (`winogradTransformKernel`, rotate false).
public func winogradForward<S: Real>(_ x: UnsafePointer<S>, transformed u: UnsafePointer<S>, _ bias: UnsafePointer<S>?,
                                     _ y: UnsafeMutablePointer<S>, batch: Int, _ g: ConvGeometry, relu: Bool,
                                     workspace: UnsafeMutablePointer<S>, tile: Int? = nil) {
    let m = resolvedTile(tile, g)
    let (_, zeros) = winogradTail(workspace, g, batch: batch, tile: m)
    winogradConvolve(x, u, bias, y, batch: batch, h: g.h, w: g.w, cin: g.cin, cout: g.cout, relu: relu, tile: m, transposed: false,
                     workspace: workspace, zeros: zeros)
}

/// Input gradient: dx = conv(dy, rot180(w) with channels swapped). dx is overwritten.
public func winogradBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ w: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                          batch: Int, _ g: ConvGeometry, workspace: UnsafeMutablePointer<S>, tile: Int? = nil) {
    let m = resolvedTile(tile, g)
    let (u, _) = winogradTail(workspace, g, batch: batch, tile: m)
    winogradKernelTransform(w, u, cin: g.cin, cout: g.cout, rotate: true, tile: m)
    winogradBackwardData(dy, transformed: u, dx, batch: batch, g, workspace: workspace, tile: m)
}

/// The input gradient with the kernel already transformed (`winogradTransformKernel`, rotate true).
public func winogradBackwardData<S: Real>(_ dy: UnsafePointer<S>, transformed u: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                          batch: Int, _ g: ConvGeometry, workspace: UnsafeMutablePointer<S>, tile: Int? = nil) {
    let m = resolvedTile(tile, g)
    let (_, zeros) = winogradTail(workspace, g, batch: batch, tile: m)
    winogradConvolve(dy, u, nil, dx, batch: batch, h: g.h, w: g.w, cin: g.cout, cout: g.cin, relu: false, tile: m, transposed: true,
                     workspace: workspace, zeros: zeros)
}

/// Kernel and bias gradients over `batch` samples: dw (3, 3, Cin, Cout), db (Cout), overwritten.
public func winogradBackwardWeights<S: Real>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ dw: UnsafeMutablePointer<S>,
                                             _ db: UnsafeMutablePointer<S>?, batch: Int, _ g: ConvGeometry,
                                             workspace: UnsafeMutablePointer<S>, tile: Int? = nil) {
    let (cin, cout, h, w) = (g.cin, g.cout, g.h, g.w)
    let m = resolvedTile(tile, g), p = winogradPositions(m)
    let tiles = batch * (h / m) * (w / m)
    let blockTiles = winogradEvenBlockTiles(g, totalTiles: tiles, tile: m)
    let v = workspace, z = workspace + p * blockTiles * cin
    let (acc, zeros) = winogradTail(workspace, g, batch: batch, tile: m)   // acc: Ŵ[p][ci][co]
    var t0 = 0
    while t0 < tiles {
        let n = min(blockTiles, tiles - t0)
        winogradInputTransform(x, v, t0: t0, count: n, h: h, w: w, c: cin, zeros: zeros, tile: m)
        winogradGradientTransform(dy, z, t0: t0, count: n, h: h, w: w, c: cout, tile: m)
        for q in 0..<p {
            S.gemm(true, false, cin, cout, n, 1, v + q * cin, p * cin, z + q * cout, p * cout, t0 == 0 ? 0 : 1,
                   acc + q * cin * cout, cout)
        }
        t0 += n
    }
    defer { if let db { columnSums(dy, db, rows: batch * h * w, channels: cout) } }
    if m == 4 {
        ComputeThreads.parallelFor(cin) { ci in S.wino4KernelGradient(acc, dw, cin, cout, ci) }
        return
    }
    // dw = Gᵀ Ŵ G for each (ci, co), Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
    let half = S(1) / 2
    let plane = cin * cout
    ComputeThreads.parallelFor(cin) { ci in
        for co in 0..<cout {
            let e = ci * cout + co
            @inline(__always) func W(_ i: Int, _ j: Int) -> S { acc[(i * 4 + j) * plane + e] }
            // q[a][j] = Σ_i Gᵀ[a][i] Ŵ[i][j], then dw[a][b] = Σ_j q[a][j] Gᵀ[b][j].
            @inline(__always) func put(_ a: Int, _ q0: S, _ q1: S, _ q2: S, _ q3: S) {
                dw[((a * 3 + 0) * cin + ci) * cout + co] = q0 + (q1 + q2) * half
                dw[((a * 3 + 1) * cin + ci) * cout + co] = (q1 - q2) * half
                dw[((a * 3 + 2) * cin + ci) * cout + co] = (q1 + q2) * half + q3
            }
            put(0, W(0, 0) + (W(1, 0) + W(2, 0)) * half, W(0, 1) + (W(1, 1) + W(2, 1)) * half,
                W(0, 2) + (W(1, 2) + W(2, 2)) * half, W(0, 3) + (W(1, 3) + W(2, 3)) * half)
            put(1, (W(1, 0) - W(2, 0)) * half, (W(1, 1) - W(2, 1)) * half, (W(1, 2) - W(2, 2)) * half, (W(1, 3) - W(2, 3)) * half)
            put(2, (W(1, 0) + W(2, 0)) * half + W(3, 0), (W(1, 1) + W(2, 1)) * half + W(3, 1),
                (W(1, 2) + W(2, 2)) * half + W(3, 2), (W(1, 3) + W(2, 3)) * half + W(3, 3))
        }
    }
}
