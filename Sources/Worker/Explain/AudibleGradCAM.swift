import CFFTW
import Foundation
import Shared

/// Grad-CAM made audible, two ways.
///
/// 1. Gating, as in the paper: the utterance's Grad-CAM map is summed over frequency to a time
///    profile, smoothed with a box filter, and the audio is kept where the smoothed profile is
///    positive (above `threshold` × its maximum) and silenced elsewhere. The gate's edges are
///    ramped over `fadeSeconds` so that the cuts do not click.
/// 2. Masking: the map, scaled to a maximum of 1, is applied to the audio's short-time spectrum
///    (the run's own front end: window, hop and FFT length, so STFT frame f is log-mel frame f) and
///    the result is resynthesised by weighted overlap-add. A mel band's weight reaches the linear
///    FFT bins through the mel filterbank: bin k gets Σ_j W[k, j]·M[j] / Σ_j W[k, j], the average
///    of the bands whose triangles cover it; bins no band covers (below fmin, above fmax) get 0.
public enum AudibleGradCAM {
    public struct Settings: Codable, Hashable, Sendable {
        /// Width of the box filter over the time profile, in seconds.
        public var smoothingSeconds = 0.1
        /// Keep audio where the smoothed profile exceeds this fraction of its maximum (0: positive).
        public var threshold = 0.0
        public var fadeSeconds = 0.005
        public init() {}
    }

    /// Centred moving average of odd `width`; at the ends the window shrinks to the samples there are.
    public static func boxFilter(_ x: [Double], width: Int) -> [Double] {
        precondition(width >= 1)
        let half = width / 2
        var prefix = [Double](repeating: 0, count: x.count + 1)
        for i in 0..<x.count { prefix[i + 1] = prefix[i] + x[i] }
        return (0..<x.count).map { i in
            let lo = max(0, i - half), hi = min(x.count, i + half + 1)
            return (prefix[hi] - prefix[lo]) / Double(hi - lo)
        }
    }

    /// Box-filter width in frames for `seconds` (odd, at least 1).
    public static func smoothingFrames(_ seconds: Double, frontEnd: FrontEndConfig) -> Int {
        let frames = Int((seconds * Double(frontEnd.sampleRate) / Double(frontEnd.hopLength)).rounded())
        return max(1, frames | 1)
    }

    /// The frame whose window centre is nearest to sample n (frame f covers [f·hop, f·hop + window)).
    @inline(__always)
    static func frame(ofSample n: Int, frontEnd fe: FrontEndConfig, frames: Int) -> Int {
        let f = Int((Double(n - fe.windowLength / 2) / Double(fe.hopLength)).rounded())
        return min(max(f, 0), frames - 1)
    }

    /// The per-sample gate (0…1) for `sampleCount` samples from a smoothed per-frame profile.
    /// Samples after the last frame's window get 0.
    public static func gate(profile: [Double], sampleCount: Int, frontEnd fe: FrontEndConfig, settings: Settings) -> [Float] {
        let frames = profile.count
        guard frames > 0 else { return [Float](repeating: 0, count: sampleCount) }
        let peak = profile.max() ?? 0
        let limit = settings.threshold > 0 ? settings.threshold * peak : 0
        let covered = (frames - 1) * fe.hopLength + fe.windowLength
        var hard = [Double](repeating: 0, count: sampleCount)
        for n in 0..<min(sampleCount, covered) where profile[frame(ofSample: n, frontEnd: fe, frames: frames)] > limit { hard[n] = 1 }
        let fade = max(1, Int(settings.fadeSeconds * Double(fe.sampleRate)) | 1)
        return boxFilter(hard, width: fade).map { Float($0) }
    }

    /// Version 1: the audio gated by the smoothed time profile of `map` (frames × bands).
    public static func gated(samples: [Float], map: [Float], frames: Int, bands: Int, frontEnd fe: FrontEndConfig,
                             settings: Settings) -> (audio: [Float], gate: [Float], profile: [Double]) {
        let profile = boxFilter(Assembly.timeProfile(map, frames: frames, bands: bands),
                                width: smoothingFrames(settings.smoothingSeconds, frontEnd: fe))
        let g = gate(profile: profile, sampleCount: samples.count, frontEnd: fe, settings: settings)
        return (zip(samples, g).map { $0 * $1 }, g, profile)
    }

    /// A per-bin mask (frames × spectrumBins) from a mel-band map (frames × bands) scaled to max 1.
    public static func linearMask(_ map: [Float], frames: Int, frontEnd fe: FrontEndConfig) -> [Float] {
        let bands = fe.melBands, bins = fe.spectrumBins
        precondition(map.count == frames * bands)
        let peak = map.reduce(Float(0)) { max($0, $1) }
        let filters = MelFilterbank(config: fe)
        var norm = [Double](repeating: 0, count: bins)
        for k in 0..<bins { for j in 0..<bands { norm[k] += filters.dense[k * bands + j] } }
        var out = [Float](repeating: 0, count: frames * bins)
        guard peak > 0 else { return out }
        for f in 0..<frames {
            for k in 0..<bins where norm[k] > 0 {
                var s = 0.0
                for j in 0..<bands { s += filters.dense[k * bands + j] * Double(max(0, map[f * bands + j])) }
                out[f * bins + k] = Float(s / norm[k] / Double(peak))
            }
        }
        return out
    }

    /// Version 2: the time–frequency map applied as a mask to the STFT, resynthesised.
    public static func masked(samples: [Float], map: [Float], frames: Int, frontEnd fe: FrontEndConfig) -> [Float] {
        let stft = STFT(frontEnd: fe)
        return stft.resynthesize(samples, mask: linearMask(map, frames: frames, frontEnd: fe), frames: frames)
    }
}

/// Short-time Fourier transform with the front end's framing (no centring, periodic Hann,
/// zero-padded to the FFT length) and its inverse by weighted overlap-add:
///
///     x̂[n] = Σ_f w[n − f·hop] y_f[n − f·hop] / Σ_f w²[n − f·hop]
///
/// which returns x exactly wherever Σ w² > 0 when the spectra are left unchanged. FFTW plans are
/// made with FFTW_ESTIMATE on the calling thread (FFTW's planner is not thread-safe: one STFT at a
/// time per process, which is how the explainer uses it).
public final class STFT {
    public let frontEnd: FrontEndConfig
    private let window: [Float]
    private let input: UnsafeMutablePointer<Float>
    private let spectrum: UnsafeMutablePointer<Float>
    private let forwardPlan: fftwf_plan
    private let inversePlan: fftwf_plan

    public init(frontEnd fe: FrontEndConfig) {
        frontEnd = fe
        let n = fe.fftLength, bins = fe.spectrumBins
        window = (0..<fe.windowLength).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(fe.windowLength))) }
        input = fftwf_alloc_real(n)
        spectrum = fftwf_alloc_real(2 * bins)
        input.initialize(repeating: 0, count: n)
        spectrum.initialize(repeating: 0, count: 2 * bins)
        let inp = input
        let plans = spectrum.withMemoryRebound(to: fftwf_complex.self, capacity: bins) { s in
            (fftwf_plan_dft_r2c_1d(Int32(n), inp, s, UInt32(FFTW_ESTIMATE)),
             fftwf_plan_dft_c2r_1d(Int32(n), s, inp, UInt32(FFTW_ESTIMATE)))
        }
        guard let f = plans.0, let i = plans.1 else { preconditionFailure("FFTW could not plan real FFTs of length \(n)") }
        forwardPlan = f
        inversePlan = i
    }

    deinit {
        fftwf_destroy_plan(forwardPlan)
        fftwf_destroy_plan(inversePlan)
        fftwf_free(input)
        fftwf_free(spectrum)
    }

    /// Multiplies frame f's spectrum by mask[f * bins ..< (f + 1) * bins] for f < frames (frames
    /// past the mask are silenced) and returns the resynthesised signal, as long as `samples`.
    public func resynthesize(_ samples: [Float], mask: [Float], frames maskFrames: Int) -> [Float] {
        let fe = frontEnd, n = fe.fftLength, bins = fe.spectrumBins, win = fe.windowLength, hop = fe.hopLength
        precondition(mask.count == maskFrames * bins, "mask of \(mask.count) values for \(maskFrames) frames × \(bins) bins")
        let total = samples.count
        let frames = total < win ? 0 : 1 + (total - win) / hop
        var out = [Double](repeating: 0, count: total), norm = [Double](repeating: 0, count: total)
        let scale = 1 / Float(n)   // FFTW's inverse is unnormalised
        for f in 0..<frames {
            let start = f * hop
            for k in 0..<win { input[k] = window[k] * samples[start + k] }
            if n > win { (input + win).update(repeating: 0, count: n - win) }
            fftwf_execute(forwardPlan)
            for k in 0..<bins {
                let m = f < maskFrames ? mask[f * bins + k] : 0
                spectrum[2 * k] *= m
                spectrum[2 * k + 1] *= m
            }
            fftwf_execute(inversePlan)
            for k in 0..<win {
                out[start + k] += Double(window[k] * input[k] * scale)
                norm[start + k] += Double(window[k] * window[k])
            }
        }
        // Where the windows barely overlap (the first and last samples) the division would only
        // amplify rounding: those samples are left at 0.
        let floor = 1e-3
        return (0..<total).map { norm[$0] > floor ? Float(out[$0] / norm[$0]) : 0 }
    }
}
