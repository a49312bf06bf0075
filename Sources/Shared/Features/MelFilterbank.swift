import Foundation

/// The VGGish / YAMNet mel filterbank: triangles linear in HTK mel, peak 1, no area normalisation,
/// the DC row forced to zero (`mel_features.spectrogram_to_mel_matrix`).
///
/// Each FFT bin lies on the slopes of at most two triangles, so the bank is stored as one short run
/// of weights per band; the product with a magnitude spectrum costs about 2 multiply-adds per bin
/// instead of `melBands` for the dense matrix.
public struct MelFilterbank: Sendable {
    public struct Band: Sendable {
        /// The first FFT bin with a non-zero weight.
        public var firstBin: Int
        /// Weights of bins firstBin ..< firstBin + weights.count.
        public var weights: [Float]
    }

    public let bins: Int
    public let bands: [Band]
    /// The same weights in float64, as a dense [bins × melBands] row-major matrix (for references and tests).
    public let dense: [Double]

    public init(config: FrontEndConfig) {
        let bins = config.spectrumBins
        let nb = config.melBands
        let nyquist = Double(config.sampleRate) / 2
        let binMel = (0..<bins).map { Mel.fromHz(nyquist * Double($0) / Double(bins - 1)) }
        let lo = Mel.fromHz(config.fMin), hi = Mel.fromHz(config.fMax)
        let edges = (0..<(nb + 2)).map { lo + (hi - lo) * Double($0) / Double(nb + 1) }
        var dense = [Double](repeating: 0, count: bins * nb)
        var bands: [Band] = []
        for j in 0..<nb {
            let (l, c, u) = (edges[j], edges[j + 1], edges[j + 2])
            var first = -1
            var weights: [Float] = []
            for m in 1..<bins {  // row 0 (DC) stays zero
                let w = max(0, min((binMel[m] - l) / (c - l), (u - binMel[m]) / (u - c)))
                dense[m * nb + j] = w
                if w > 0 {
                    if first < 0 { first = m }
                    // Bins inside the run whose weight is exactly 0 cannot occur (triangles are convex).
                    weights.append(Float(w))
                }
            }
            bands.append(Band(firstBin: max(first, 0), weights: weights))
        }
        self.bins = bins
        self.bands = bands
        self.dense = dense
    }

    /// The range of bins any band uses (bins outside it never need a magnitude).
    public var usedBins: Range<Int> {
        let used = bands.filter { !$0.weights.isEmpty }
        guard let lo = used.map({ $0.firstBin }).min(), let hi = used.map({ $0.firstBin + $0.weights.count }).max() else { return 0..<0 }
        return lo..<hi
    }
}
