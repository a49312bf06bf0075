import CFFTW
import Foundation

/// Waveform → log-mel spectrogram → patches, as defined in `../shared/golden/README.md`:
/// frames of `windowLength` samples every `hopLength` (no centring), periodic Hann window,
/// zero-padded at the end to `fftLength`, magnitude of the real FFT, VGGish mel filterbank,
/// ln(mel + logOffset).
///
/// Each frame goes through one FFTW real-to-complex plan (interleaved output: FFTW's SIMD codelets
/// cover that layout, and measured 3–4× faster than split or batched-strided layouts here). The
/// magnitudes of a batch of frames are stored bin-major ([bin][frame]) so that the sparse mel
/// product and the log run along contiguous rows of `batch` frames. One extractor per thread (the
/// buffers are its own). Plans use FFTW_ESTIMATE, which picks the same algorithm in every process
/// (FFTW_MEASURE times candidates and may not): the store must be identical whatever the number
/// of ranks, and for a single length-512 transform the measured plan was no faster.
public final class LogMelExtractor {
    public let config: FrontEndConfig
    public let filterbank: MelFilterbank
    /// Frames per batch of the mel product and the log.
    public static let batch = 16  // = SIMD16 lanes in the mel product

    private let window: UnsafeMutablePointer<Float>   // [windowLength]
    private let plan: fftwf_plan
    private let input: UnsafeMutablePointer<Float>    // [fftLength], zeros past the window
    private let spectrum: UnsafeMutablePointer<Float> // [bins][re, im]
    private let mag: UnsafeMutablePointer<Float>      // [bins][batch]
    private let mel: UnsafeMutablePointer<Float>      // [melBands][batch]
    private let used: Range<Int>
    private let bandFirst: [Int]
    private let bandWeights: [[Float]]

    /// FFTW's planner keeps global state: plans are made and destroyed one at a time.
    private static let plannerLock = NSLock()

    public init(config: FrontEndConfig) {
        precondition(config.problem == nil, "invalid front-end configuration: \(config.problem ?? "")")
        self.config = config
        filterbank = MelFilterbank(config: config)
        let n = config.fftLength, w = config.windowLength, bins = config.spectrumBins, b = Self.batch
        window = fftwf_alloc_real(w)
        for k in 0..<w { window[k] = Float(0.5 - 0.5 * cos(2 * Double.pi * Double(k) / Double(w))) }
        input = fftwf_alloc_real(n)
        spectrum = fftwf_alloc_real(2 * bins)
        mag = fftwf_alloc_real(b * bins)
        mel = fftwf_alloc_real(b * config.melBands)
        input.initialize(repeating: 0, count: n)
        spectrum.initialize(repeating: 0, count: 2 * bins)
        mag.initialize(repeating: 0, count: b * bins)
        mel.initialize(repeating: 0, count: b * config.melBands)
        used = filterbank.usedBins
        bandFirst = filterbank.bands.map { $0.firstBin }
        bandWeights = filterbank.bands.map { $0.weights }
        Self.plannerLock.lock()
        let inputBuffer = input
        let p = spectrum.withMemoryRebound(to: fftwf_complex.self, capacity: bins) {
            fftwf_plan_dft_r2c_1d(Int32(n), inputBuffer, $0, UInt32(FFTW_ESTIMATE))
        }
        Self.plannerLock.unlock()
        guard let p else { preconditionFailure("FFTW could not plan a real FFT of length \(n)") }
        plan = p
    }

    deinit {
        Self.plannerLock.lock()
        fftwf_destroy_plan(plan)
        Self.plannerLock.unlock()
        fftwf_free(window)
        fftwf_free(input)
        fftwf_free(spectrum)
        fftwf_free(mag)
        fftwf_free(mel)
    }

    /// Pads per the config's rule, returns (frames F, log-mel [F × melBands] row-major) and the padded length.
    public func logMel(_ samples: UnsafeBufferPointer<Float>) -> (frames: Int, values: [Float], paddedLength: Int) {
        let padded = config.paddedLength(samples.count)
        let frames = config.frameCount(paddedLength: padded)
        let values = [Float](unsafeUninitializedCapacity: frames * config.melBands) { buf, count in
            logMel(samples, paddedLength: padded, frames: frames, into: buf.baseAddress!)
            count = frames * config.melBands
        }
        return (frames, values, padded)
    }

    public func logMel(_ samples: [Float]) -> (frames: Int, values: [Float], paddedLength: Int) {
        samples.withUnsafeBufferPointer { logMel($0) }
    }

    /// Writes `frames` log-mel rows of the clip zero-extended to `paddedLength` into `out`.
    public func logMel(_ samples: UnsafeBufferPointer<Float>, paddedLength: Int, frames: Int, into out: UnsafeMutablePointer<Float>) {
        let b = Self.batch, w = config.windowLength, hop = config.hopLength
        let nb = config.melBands
        let available = samples.count
        let src = samples.baseAddress
        let offset = Float(config.logOffset)
        let lo = used.lowerBound, hi = used.upperBound
        let input = self.input, window = self.window, spectrum = self.spectrum, mag = self.mag, mel = self.mel
        var f0 = 0
        while f0 < frames {
            let count = min(b, frames - f0)
            for k in 0..<count {
                // Window the frame; samples past the clip's end are the padding zeros.
                let start = (f0 + k) * hop
                let have = max(0, min(w, available - start))
                if have > 0, let src {
                    let s = src + start
                    for i in 0..<have { input[i] = window[i] * s[i] }
                }
                if have < w { (input + have).update(repeating: 0, count: w - have) }
                fftwf_execute(plan)
                // |X[m]|² for the bins the filterbank uses, stored bin-major.
                for m in lo..<hi {
                    let re = spectrum[2 * m], im = spectrum[2 * m + 1]
                    mag[m * b + k] = re * re + im * im
                }
            }
            // The square roots in one contiguous, vectorised pass.
            for i in (lo * b)..<(hi * b) { mag[i] = FastMath.sqrt(mag[i]) }
            // Sparse mel product along rows of `b` frames (columns past `count` are unused).
            // The accumulator is a register value: through pointers the compiler must assume
            // `acc` and `row` overlap and would not vectorise.
            for j in 0..<nb {
                var acc = SIMD16<Float>(repeating: 0)
                bandWeights[j].withUnsafeBufferPointer { wts in
                    var row = UnsafeRawPointer(mag + bandFirst[j] * b)
                    for wt in wts {
                        acc += wt * row.loadUnaligned(as: SIMD16<Float>.self)
                        row += b * MemoryLayout<Float>.stride
                    }
                }
                UnsafeMutableRawPointer(mel + j * b).storeBytes(of: acc, as: SIMD16<Float>.self)
            }
            FastMath.lnOffset(mel, mel, count: nb * b, offset: offset)
            // [band][frame] → [frame][band].
            for k in 0..<count {
                let row = out + (f0 + k) * nb
                for j in 0..<nb { row[j] = mel[j * b + k] }
            }
            f0 += count
        }
    }

    /// Patches [P × patchFrames × melBands] from a log-mel matrix, with each patch's start frame.
    /// Only patches that fit entirely are cut (the padding rule already decided the tail).
    public func patches(logMel values: [Float], frames: Int) -> (count: Int, values: [Float], startFrames: [Int]) {
        Segmenter(config: config).patches(logMel: values, frames: frames)
    }
}
