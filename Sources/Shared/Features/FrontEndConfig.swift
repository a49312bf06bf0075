import Foundation

/// How a clip's tail is padded before framing (see docs/FEATURES.md, "Padding and short files").
public enum TailPadding: String, Codable, Hashable, Sendable, CaseIterable {
    /// YAMNet's rule: zeros are appended until the clip fills a whole number of patch hops, so every
    /// clip (even one sample long) gives at least one patch and no frame is ever dropped.
    case yamnet
    /// The paper48k rule: a clip shorter than one patch is zero-padded to exactly one patch;
    /// longer clips are not padded and frames past the last full patch are dropped.
    case dropTail
}

/// Everything that decides the log-mel patches a clip turns into.
///
/// Two presets reproduce the golden references in `../shared/golden`; every field can be
/// overridden. `hash` identifies the configuration in feature stores, so that features computed
/// with different settings are never mixed.
public struct FrontEndConfig: Codable, Hashable, Sendable {
    public var sampleRate: Int
    public var windowLength: Int
    public var hopLength: Int
    public var fftLength: Int
    public var melBands: Int
    public var fMin: Double
    public var fMax: Double
    public var logOffset: Double
    public var padding: TailPadding
    public var patchFrames: Int = 96
    public var patchHop: Int = 48

    public init(sampleRate: Int, windowLength: Int, hopLength: Int, fftLength: Int, melBands: Int,
                fMin: Double, fMax: Double, logOffset: Double, padding: TailPadding,
                patchFrames: Int = 96, patchHop: Int = 48) {
        self.sampleRate = sampleRate
        self.windowLength = windowLength
        self.hopLength = hopLength
        self.fftLength = fftLength
        self.melBands = melBands
        self.fMin = fMin
        self.fMax = fMax
        self.logOffset = logOffset
        self.padding = padding
        self.patchFrames = patchFrames
        self.patchHop = patchHop
    }

    /// What pretrained YAMNet expects (16 kHz, 25 ms windows, 10 ms hop, FFT 512, 125–7500 Hz).
    public static let yamnet = FrontEndConfig(sampleRate: 16000, windowLength: 400, hopLength: 160, fftLength: 512,
                                              melBands: 64, fMin: 125, fMax: 7500, logOffset: 0.001, padding: .yamnet)

    /// The paper's tables: 48 kHz with the same 25 ms / 10 ms timing and an unpadded 1200-point FFT.
    public static let paper48k = FrontEndConfig(sampleRate: 48000, windowLength: 1200, hopLength: 480, fftLength: 1200,
                                                melBands: 64, fMin: 125, fMax: 7500, logOffset: 0.001, padding: .dropTail)

    public static func preset(_ name: String) -> FrontEndConfig? {
        switch name.lowercased() {
        case "yamnet": return .yamnet
        case "paper48k": return .paper48k
        default: return nil
        }
    }

    /// Spectrum bins of the real FFT (DC to Nyquist).
    public var spectrumBins: Int { fftLength / 2 + 1 }

    /// Samples covered by one patch: its first window plus (patchFrames − 1) hops.
    public var patchSamples: Int { windowLength + (patchFrames - 1) * hopLength }

    /// Samples between the starts of consecutive patches.
    public var patchHopSamples: Int { patchHop * hopLength }

    /// Floats in one patch ([patchFrames][melBands], row-major).
    public var patchValues: Int { patchFrames * melBands }

    /// The length a clip of `n` samples has after the padding rule.
    public func paddedLength(_ n: Int) -> Int {
        switch padding {
        case .yamnet:
            let extra = max(n - patchSamples, 0)
            let hops = (extra + patchHopSamples - 1) / patchHopSamples
            return patchSamples + hops * patchHopSamples
        case .dropTail:
            return max(n, patchSamples)
        }
    }

    /// Frames of a (padded) clip of `n` samples: windows that fit entirely, no centring.
    public func frameCount(paddedLength n: Int) -> Int {
        n < windowLength ? 0 : 1 + (n - windowLength) / hopLength
    }

    /// Patches cut from `frames` log-mel frames: only where a full patch fits.
    public func patchCount(frames: Int) -> Int {
        frames < patchFrames ? 0 : 1 + (frames - patchFrames) / patchHop
    }

    /// A problem with the configuration, in words a user can act on (nil when it is usable).
    public var problem: String? {
        if sampleRate < 1000 { return "sample rate \(sampleRate) Hz is too low (at least 1000)" }
        if windowLength < 16 { return "window length \(windowLength) is too short (at least 16 samples)" }
        if fftLength < windowLength { return "FFT length \(fftLength) is shorter than the window (\(windowLength)); it must be at least as long" }
        if hopLength < 1 { return "hop length must be at least 1 sample" }
        if melBands < 1 { return "mel bands must be at least 1" }
        if !(fMin >= 0 && fMin < fMax) { return "mel range \(fMin)–\(fMax) Hz is empty (need 0 ≤ fmin < fmax)" }
        if fMax > Double(sampleRate) / 2 + 1e-9 { return "fmax \(fMax) Hz is above the Nyquist frequency \(sampleRate / 2) Hz" }
        if !(logOffset > 0) { return "log offset must be positive (got \(logOffset))" }
        if patchFrames < 1 || patchHop < 1 { return "patch frames and patch hop must be at least 1" }
        let filters = MelFilterbank(config: self)
        if let empty = filters.bands.firstIndex(where: { $0.weights.isEmpty }) {
            return "mel band \(empty) covers no FFT bin (FFT length \(fftLength) is too short for \(melBands) bands in \(fMin)–\(fMax) Hz)"
        }
        return nil
    }

    /// The configuration as canonical JSON (sorted keys): what `hash` is computed from.
    public var canonicalJSON: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = (try? enc.encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// A stable hex identifier of this configuration (XXH64 of its canonical JSON).
    public var hash: String { XXHash64.hex(XXHash64.hash(Array(canonicalJSON.utf8))) }

    /// The melBands + 2 band edges in Hz (equally spaced on the HTK mel scale), for plot axes.
    public var melBandEdgesHz: [Double] {
        let lo = Mel.fromHz(fMin), hi = Mel.fromHz(fMax)
        return (0..<(melBands + 2)).map { Mel.toHz(lo + (hi - lo) * Double($0) / Double(melBands + 1)) }
    }

    /// Centre frequency of each mel band in Hz.
    public var melBandCentersHz: [Double] { Array(melBandEdgesHz[1...melBands]) }
}

/// The HTK mel scale used by VGGish and YAMNet.
public enum Mel {
    public static func fromHz(_ f: Double) -> Double { 1127.0 * log(1.0 + f / 700.0) }
    public static func toHz(_ m: Double) -> Double { 700.0 * (exp(m / 1127.0) - 1.0) }
}
