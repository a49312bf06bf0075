import Foundation
import Shared
import Worker

/// Models whose true attributions are known by construction, for checking the explanation methods.

/// Two classes; p(class 0) = c + Σ_r w_r · mean of x over region r (regions of a fixed grid),
/// p(class 1) = 1 − p(class 0). Only the listed regions matter, each with its weight.
final class RegionScorer: PatchClassifier {
    let classes = 2
    let frames: Int, bands: Int
    let maxBatch: Int
    let regions: Regions
    let weights: [Double]
    let bias: Double
    private(set) var calls = 0

    init(frames: Int = 96, bands: Int = 64, regions: Regions, weights: [Double], bias: Double = 0.5, maxBatch: Int = 128) {
        precondition(weights.count == regions.count)
        self.frames = frames
        self.bands = bands
        self.regions = regions
        self.weights = weights
        self.bias = bias
        self.maxBatch = maxBatch
    }

    func score(_ x: UnsafePointer<Float>) -> Double {
        var sums = [Double](repeating: 0, count: regions.count)
        for i in 0..<(frames * bands) { sums[Int(regions.labels[i])] += Double(x[i]) }
        let sizes = regions.sizes
        var p = bias
        for r in 0..<regions.count { p += weights[r] * sums[r] / Double(sizes[r]) }
        return p
    }

    func probabilities(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Double>) throws {
        precondition(count <= maxBatch)
        calls += 1
        for b in 0..<count {
            let p = score(x + b * frames * bands)
            out[2 * b] = p
            out[2 * b + 1] = 1 - p
        }
    }
}

/// A Grad-CAM source with a linear head over a known feature map: A = the means of x over
/// cells of cellFrames × cellBands (channel 0) and of x² (channel 1); logit_c = Σ W_c · A.
/// Its gradient is W_c whatever the input, so Grad-CAM's answer can be computed independently.
final class LinearHead: GradCAMSource {
    let classes: Int
    let frames: Int, bands: Int
    let maxBatch: Int
    let cellFrames: Int, cellBands: Int
    let h: Int, w: Int, c = 2
    /// W[class][(i * w + j) * c + k].
    let weights: [[Double]]

    init(classes: Int = 3, frames: Int = 96, bands: Int = 64, cellFrames: Int = 16, cellBands: Int = 16, maxBatch: Int = 3, seed: UInt64 = 5) {
        self.classes = classes
        self.frames = frames
        self.bands = bands
        self.cellFrames = cellFrames
        self.cellBands = cellBands
        self.maxBatch = maxBatch
        h = frames / cellFrames
        w = bands / cellBands
        var rng = SeededGenerator(seed: seed)
        let n = frames / cellFrames * (bands / cellBands) * 2
        weights = (0..<classes).map { _ in (0..<n).map { _ in rng.normal() } }
    }

    func features(_ x: UnsafePointer<Float>) -> [Double] {
        var a = [Double](repeating: 0, count: h * w * c)
        for f in 0..<frames {
            for b in 0..<bands {
                let cell = (f / cellFrames) * w + b / cellBands, v = Double(x[f * bands + b])
                a[cell * c] += v
                a[cell * c + 1] += v * v
            }
        }
        return a.map { $0 / Double(cellFrames * cellBands) }
    }

    func logits(_ x: UnsafePointer<Float>) -> [Double] {
        let a = features(x)
        return weights.map { wc in zip(wc, a).reduce(0) { $0 + $1.0 * $1.1 } }
    }

    func probabilities(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Double>) throws {
        precondition(count <= maxBatch)
        for b in 0..<count {
            let l = logits(x + b * frames * bands)
            let m = l.max()!
            let e = l.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            for k in 0..<classes { out[b * classes + k] = e[k] / s }
        }
    }

    func featureGradients(_ x: UnsafePointer<Float>, count: Int, targets: [Int], layer: Tap) throws -> FeatureGradients {
        precondition(count <= maxBatch)
        var acts: [Float] = [], grads: [Float] = []
        for b in 0..<count {
            acts += features(x + b * frames * bands).map { Float($0) }
            grads += weights[targets[b]].map { Float($0) }
        }
        return FeatureGradients(count: count, h: h, w: w, c: c, activations: acts, gradients: grads)
    }
}

func randomPatch(_ n: Int, seed: UInt64, mean: Double = -3, sd: Double = 1.5) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<n).map { _ in Float(mean + sd * rng.normal()) }
}

/// A small fusion-v1 with seeded random weights (moving statistics 0 / 1).
func smallNetwork(width: Double = 0.125, classes: Int = 4, seed: UInt64 = 11) throws -> Network<Float> {
    let net = try Network<Float>(config: ModelConfig(architecture: .fusionV1, classes: classes, width: width))
    var rng = SeededGenerator(seed: seed)
    net.params.initialize(using: &rng)
    return net
}
