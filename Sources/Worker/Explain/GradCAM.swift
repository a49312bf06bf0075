import Foundation
import Shared

/// Grad-CAM (Selvaraju et al. 2017) on a feature map of the network.
///
/// For class c with score y (the logit) and feature map A (h × w × k channels):
///
///     α_k = (1 / hw) Σ_ij ∂y/∂A_ij,k          (channel weights: the gradient's spatial mean)
///     L   = ReLU( Σ_k α_k A_k )                (h × w)
///
/// L is then stretched to the patch (frames × bands) by bilinear interpolation between cell
/// centres, as image Grad-CAM implementations resize it to the input.
public enum GradCAM {
    public struct Settings: Codable, Hashable, Sendable {
        /// Where to look (default: the fused 6 × 4 × 1536 map the head sees).
        public var layer: Tap = .fused
        public init(layer: Tap = .fused) { self.layer = layer }
    }

    /// The coarse map of one sample: activation and gradient are h × w × c (NHWC); returns h × w.
    public static func map(activation a: UnsafePointer<Float>, gradient g: UnsafePointer<Float>, h: Int, w: Int, c: Int) -> [Float] {
        let positions = h * w
        var alpha = [Double](repeating: 0, count: c)
        for p in 0..<positions {
            let row = g + p * c
            for k in 0..<c { alpha[k] += Double(row[k]) }
        }
        for k in 0..<c { alpha[k] /= Double(positions) }
        var out = [Float](repeating: 0, count: positions)
        for p in 0..<positions {
            let row = a + p * c
            var s = 0.0
            for k in 0..<c { s += alpha[k] * Double(row[k]) }
            out[p] = Float(max(0, s))
        }
        return out
    }

    /// Bilinear resize of an h × w map to frames × bands: cell centres aligned (output cell i
    /// samples the map at (i + ½)·h/frames − ½), clamped at the edges.
    public static func upsample(_ m: [Float], h: Int, w: Int, frames: Int, bands: Int) -> [Float] {
        precondition(m.count == h * w && h >= 1 && w >= 1)
        var out = [Float](repeating: 0, count: frames * bands)
        // Source coordinate and weights per output column, computed once.
        func axis(_ n: Int, _ src: Int) -> [(Int, Int, Double)] {
            (0..<n).map { i in
                let u = min(max((Double(i) + 0.5) * Double(src) / Double(n) - 0.5, 0), Double(src - 1))
                let i0 = Int(u)
                return (i0, min(i0 + 1, src - 1), u - Double(i0))
            }
        }
        let rows = axis(frames, h), cols = axis(bands, w)
        for i in 0..<frames {
            let (r0, r1, dr) = rows[i]
            for j in 0..<bands {
                let (c0, c1, dc) = cols[j]
                let top = Double(m[r0 * w + c0]) * (1 - dc) + Double(m[r0 * w + c1]) * dc
                let bottom = Double(m[r1 * w + c0]) * (1 - dc) + Double(m[r1 * w + c1]) * dc
                out[i * bands + j] = Float(top * (1 - dr) + bottom * dr)
            }
        }
        return out
    }

    public struct Result: Sendable {
        /// Coarse maps, count × h × w.
        public var coarse: [Float]
        public var h: Int, w: Int
        /// Maps at patch resolution, count × frames × bands.
        public var maps: [Float]
    }

    /// Grad-CAM of `count` patches for class `target` (one forward and one backward per batch).
    public static func explain(_ source: GradCAMSource, patches: UnsafePointer<Float>, count: Int, target: Int,
                               settings: Settings, poll: () -> Void = {}) throws -> Result {
        let per = source.frames * source.bands
        var coarse: [Float] = [], maps: [Float] = []
        var h = 0, w = 0
        var start = 0
        while start < count {
            let n = min(source.maxBatch, count - start)
            let fg = try source.featureGradients(patches + start * per, count: n, targets: [Int](repeating: target, count: n), layer: settings.layer)
            h = fg.h
            w = fg.w
            let size = fg.h * fg.w * fg.c
            fg.activations.withUnsafeBufferPointer { a in
                fg.gradients.withUnsafeBufferPointer { g in
                    for b in 0..<n {
                        let m = map(activation: a.baseAddress! + b * size, gradient: g.baseAddress! + b * size, h: fg.h, w: fg.w, c: fg.c)
                        coarse += m
                        maps += upsample(m, h: fg.h, w: fg.w, frames: source.frames, bands: source.bands)
                    }
                }
            }
            start += n
            poll()
        }
        return Result(coarse: coarse, h: h, w: w, maps: maps)
    }
}
