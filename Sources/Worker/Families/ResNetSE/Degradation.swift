import Foundation
import Shared

/// Low-quality versions of the test audio, for the robustness evaluation (the verify-to-classify
/// paper compared high- and low-quality recordings).
///
/// - **telephone**: band-limited to 300–3400 Hz, the narrow-band telephone channel. A brick-wall
///   filter in the frequency domain: the clip (zero-padded to a power of two) is transformed, every
///   bin outside the band is set to zero, and the inverse transform is cut back to the clip's length.
/// - **noise at an SNR**: white Gaussian noise scaled so that 10·log10(Σx² / Σn²) over the whole
///   clip is exactly the SNR asked for (after the band limit, when both are applied).
///
/// Applied to the audio at the store's sample rate (after the same resampling as preprocessing);
/// the noise of file k is drawn from the stream ("degrade", k) of the run's seed, so a degraded
/// evaluation is reproducible.
public struct Degradation: Codable, Hashable, Sendable {
    /// Band-limit to `band` (nil: full band).
    public var band: ClosedRange<Double>?
    /// Add white noise at this SNR in dB (nil: none).
    public var snr: Double?

    public static let telephoneBand: ClosedRange<Double> = 300 ... 3400

    public init(band: ClosedRange<Double>?, snr: Double?) {
        self.band = band
        self.snr = snr
    }

    /// "telephone band 300–3400 Hz, white noise at 10 dB SNR".
    public var name: String {
        var parts: [String] = []
        if let b = band { parts.append(String(format: "telephone band %.0f–%.0f Hz", b.lowerBound, b.upperBound)) }
        if let s = snr { parts.append(String(format: "white noise at %g dB SNR", s)) }
        return parts.isEmpty ? "clean" : parts.joined(separator: ", ")
    }

    public func apply(_ samples: [Float], sampleRate: Int, rng: inout SeededGenerator) -> [Float] {
        var x = samples
        if let band { x = Degradation.bandLimit(x, sampleRate: sampleRate, band: band) }
        if let snr { x = Degradation.addNoise(x, snr: snr, rng: &rng) }
        return x
    }

    /// Zeroes every frequency outside `band` (brick wall, see above).
    public static func bandLimit(_ x: [Float], sampleRate: Int, band: ClosedRange<Double>) -> [Float] {
        guard !x.isEmpty else { return x }
        var n = 1
        while n < x.count { n <<= 1 }
        var re = [Double](repeating: 0, count: n), im = [Double](repeating: 0, count: n)
        for i in 0..<x.count { re[i] = Double(x[i]) }
        FFT.transform(&re, &im, inverse: false)
        let df = Double(sampleRate) / Double(n)
        for k in 0..<n {
            // Bin k and its mirror n − k are the same frequency.
            let f = Double(min(k, n - k)) * df
            if !band.contains(f) { re[k] = 0; im[k] = 0 }
        }
        FFT.transform(&re, &im, inverse: true)
        return (0..<x.count).map { Float(re[$0]) }
    }

    /// Adds white Gaussian noise so that the clip's signal-to-noise ratio is `snr` dB.
    public static func addNoise(_ x: [Float], snr: Double, rng: inout SeededGenerator) -> [Float] {
        guard !x.isEmpty else { return x }
        let noise = (0..<x.count).map { _ in rng.normal() }
        let ps = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        let pn = noise.reduce(0.0) { $0 + $1 * $1 }
        guard ps > 0, pn > 0 else { return x }
        // Scaling the drawn noise by its own power (not its expected power) makes the SNR exact.
        let scale = (ps / pn / pow(10, snr / 10)).squareRoot()
        return (0..<x.count).map { Float(Double(x[$0]) + scale * noise[$0]) }
    }

    /// The test audio of store file `file`, degraded, as log-mel frames (as `ser preprocess` computes
    /// them), with the number of frames that lie within the audio.
    static func logMel(store: FeatureStore, file: Int, degradation: Degradation, seed: UInt64,
                       extractor: LogMelExtractor) throws -> (values: [Float], frames: Int, audioFrames: Int) {
        let f = store.files[file]
        let fe = store.frontEnd
        guard FileManager.default.fileExists(atPath: f.path) else {
            throw FileError("\(f.path): not found; the degraded evaluation reads the test files' audio again (the store \(store.directory) holds only features). Restore the corpus at that path or leave out --degrade/--snr.")
        }
        var clip = try AudioFile.read(f.path)
        if clip.sampleRate != fe.sampleRate {
            clip.samples = try AudioFile.resample(clip.samples, from: clip.sampleRate, to: fe.sampleRate, quality: store.manifest.options.resampler)
        }
        var rng = SeededGenerator(seed: seed, stream: "degrade/\(f.relativePath)")
        let y = degradation.apply(clip.samples, sampleRate: fe.sampleRate, rng: &rng)
        let mel = extractor.logMel(y)
        let audio = min(mel.frames, UtteranceFeatures.audioFrames(durationSeconds: f.durationSeconds, frontEnd: fe))
        return (mel.values, mel.frames, max(1, audio))
    }
}

/// A radix-2 complex FFT in Double (for the band limit; the front end uses FFTW).
enum FFT {
    /// In-place transform of (re, im), length a power of two. The inverse includes the 1/n.
    static func transform(_ re: inout [Double], _ im: inout [Double], inverse: Bool) {
        let n = re.count
        precondition(n == im.count && n > 0 && n & (n - 1) == 0, "FFT length must be a power of two")
        // Bit-reversal permutation.
        var j = 0
        for i in 1..<max(1, n) {
            var bit = n >> 1
            while j & bit != 0 { j ^= bit; bit >>= 1 }
            j |= bit
            if i < j { re.swapAt(i, j); im.swapAt(i, j) }
        }
        var len = 2
        let sign = inverse ? 1.0 : -1.0
        while len <= n {
            let ang = sign * 2 * Double.pi / Double(len)
            let half = len / 2
            // Twiddles computed directly (not by repeated multiplication) to keep the error at an ulp.
            let wr = (0..<half).map { cos(ang * Double($0)) }, wi = (0..<half).map { sin(ang * Double($0)) }
            re.withUnsafeMutableBufferPointer { r in
                im.withUnsafeMutableBufferPointer { m in
                    var start = 0
                    while start < n {
                        for k in 0..<half {
                            let a = start + k, b = a + half
                            let tr = r[b] * wr[k] - m[b] * wi[k]
                            let ti = r[b] * wi[k] + m[b] * wr[k]
                            r[b] = r[a] - tr; m[b] = m[a] - ti
                            r[a] += tr; m[a] += ti
                        }
                        start += len
                    }
                }
            }
            len <<= 1
        }
        if inverse {
            let inv = 1 / Double(n)
            for i in 0..<n { re[i] *= inv; im[i] *= inv }
        }
    }
}
