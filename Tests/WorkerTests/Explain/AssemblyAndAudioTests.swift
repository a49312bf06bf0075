import Foundation
import Shared
import Worker
import XCTest

/// Patch maps onto the utterance, and audible Grad-CAM: the box filter, the gate, the mel-to-bin
/// mask and the STFT/ISTFT resynthesis.
final class AssemblyAndAudioTests: XCTestCase {
    /// Two patches of 4 frames × 2 bands, the second starting at frame 2: frames 2 and 3 are the
    /// mean of both, the others come from one patch.
    func testUtteranceMapAveragesOverlaps() {
        let a: [Float] = [1, 1, 2, 2, 3, 3, 4, 4]
        let b: [Float] = [10, 20, 30, 40, 50, 60, 70, 80]
        let u = Assembly.utterance(a + b, startFrames: [0, 2], patchFrames: 4, bands: 2)
        XCTAssertEqual(u, [1, 1, 2, 2, 6.5, 11.5, 17, 22, 50, 60, 70, 80])
        XCTAssertEqual(Assembly.coveredFrames(startFrames: [0, 2], patchFrames: 4), 6)
        // The log-mel rebuilt from overlapping patches that agree.
        let mel = (0..<12).map { Float($0) }
        let patches = Array(mel[0..<8]) + Array(mel[4..<12])
        XCTAssertEqual(Assembly.logMel(patches: patches, startFrames: [0, 2], patchFrames: 4, bands: 2), mel)
        XCTAssertEqual(Assembly.bandProfile([1, 2, 3, 4, 5, 6], frames: 3, bands: 2), [3, 4])
        XCTAssertEqual(Assembly.timeProfile([1, 2, 3, 4, 5, 6], frames: 3, bands: 2), [3, 7, 11])
    }

    func testBoxFilter() {
        XCTAssertEqual(AudibleGradCAM.boxFilter([0, 0, 3, 0, 0], width: 3), [0, 1, 1, 1, 0])
        XCTAssertEqual(AudibleGradCAM.boxFilter([3, 0], width: 3), [1.5, 1.5])
        XCTAssertEqual(AudibleGradCAM.boxFilter([1, 2, 3], width: 1), [1, 2, 3])
        XCTAssertEqual(AudibleGradCAM.boxFilter([0, 0, 0, 0, 5, 0, 0, 0, 0], width: 5), [0, 0, 1, 1, 1, 1, 1, 0, 0])
        // 0.1 s at 16 kHz with a 160-sample hop: 10 frames → 11 (odd, centred).
        XCTAssertEqual(AudibleGradCAM.smoothingFrames(0.1, frontEnd: .yamnet), 11)
    }

    /// The gate keeps the samples whose nearest frame centre has a positive profile.
    func testGateFollowsTheProfile() {
        let fe = FrontEndConfig.yamnet   // window 400, hop 160: frame f centred on sample 160 f + 200
        var s = AudibleGradCAM.Settings()
        s.fadeSeconds = 0    // hard edges for the hand check
        let profile: [Double] = [0, 0, 2, 3, 0, 0]
        let g = AudibleGradCAM.gate(profile: profile, sampleCount: 1400, frontEnd: fe, settings: s)
        // Frame 2 is nearest for samples 440…599 (n − 200 within ±80 of 320), frame 3 for 600…759.
        XCTAssertEqual(g[439], 0)
        XCTAssertEqual(g[440], 1)
        XCTAssertEqual(g[759], 1)
        XCTAssertEqual(g[760], 0)
        // Past the last frame's window (5·160 + 400 = 1200 samples) everything is silent.
        XCTAssertTrue(g[1200...].allSatisfy { $0 == 0 })
        XCTAssertEqual(g.reduce(0, +), 320)
        // A threshold of half the peak keeps only frame 3.
        s.threshold = 0.8
        XCTAssertEqual(AudibleGradCAM.gate(profile: profile, sampleCount: 1400, frontEnd: fe, settings: s).reduce(0, +), 160)
        // The gated audio, with a map that is positive on frames 2 and 3 only.
        var map = [Float](repeating: 0, count: 6 * 64)
        for b in 0..<64 { map[2 * 64 + b] = 1; map[3 * 64 + b] = 1 }
        var s2 = AudibleGradCAM.Settings()
        s2.smoothingSeconds = 0.001   // one frame: no smoothing
        s2.fadeSeconds = 0
        let audio = (0..<1400).map { Float(sin(Double($0))) }
        let out = AudibleGradCAM.gated(samples: audio, map: map, frames: 6, bands: 64, frontEnd: fe, settings: s2).audio
        XCTAssertEqual(out[500], audio[500])
        XCTAssertEqual(out[100], 0)
    }

    /// With the spectra unchanged, the weighted overlap-add returns the signal (where the windows
    /// overlap), for both presets (FFT zero-padded to 512, and an unpadded 1200-point FFT).
    func testResynthesisIsExactWithAUnitMask() {
        for fe in [FrontEndConfig.yamnet, .paper48k] {
            var rng = SeededGenerator(seed: 3)
            let n = fe.windowLength + 40 * fe.hopLength
            let x = (0..<n).map { _ in Float(rng.normal() * 0.3) }
            let frames = 1 + (n - fe.windowLength) / fe.hopLength
            let y = STFT(frontEnd: fe).resynthesize(x, mask: [Float](repeating: 1, count: frames * fe.spectrumBins), frames: frames)
            var worst: Float = 0
            for i in fe.hopLength..<(n - fe.hopLength) { worst = max(worst, abs(x[i] - y[i])) }
            XCTAssertLessThan(worst, 1e-5, "\(fe.sampleRate) Hz")
        }
    }

    func amplitude(_ x: [Float], _ hz: Double, rate: Int, range: Range<Int>) -> Double {
        var re = 0.0, im = 0.0
        for i in range {
            let p = 2 * Double.pi * hz * Double(i) / Double(rate)
            re += Double(x[i]) * cos(p)
            im += Double(x[i]) * sin(p)
        }
        return 2 * (re * re + im * im).squareRoot() / Double(range.count)
    }

    /// A map that keeps the mel bands centred between 400 and 1200 Hz: a 700 Hz tone survives the
    /// masked resynthesis, a 3 kHz tone is removed.
    func testMaskKeepsTheMappedBands() {
        let fe = FrontEndConfig.yamnet
        let n = 16000, frames = fe.frameCount(paddedLength: n)
        let x = (0..<n).map { i -> Float in
            let t = Double(i) / 16000
            return Float(0.3 * sin(2 * Double.pi * 700 * t) + 0.3 * sin(2 * Double.pi * 3000 * t))
        }
        let centres = fe.melBandCentersHz
        var map = [Float](repeating: 0, count: frames * 64)
        for f in 0..<frames { for b in 0..<64 where centres[b] > 400 && centres[b] < 1200 { map[f * 64 + b] = 2 } }
        let mask = AudibleGradCAM.linearMask(map, frames: frames, frontEnd: fe)
        // Bin 22 (687.5 Hz) lies well inside the kept bands: weight 1 after scaling by the maximum.
        XCTAssertEqual(mask[22], 1, accuracy: 1e-6)
        XCTAssertEqual(mask[96], 0)   // 3 kHz
        XCTAssertEqual(mask[0], 0)    // DC: no band covers it
        let y = AudibleGradCAM.masked(samples: x, map: map, frames: frames, frontEnd: fe)
        let mid = 2000..<14000
        XCTAssertEqual(amplitude(y, 700, rate: 16000, range: mid), 0.3, accuracy: 0.03)
        XCTAssertLessThan(amplitude(y, 3000, rate: 16000, range: mid), 0.003)
        // An all-zero map silences everything.
        XCTAssertTrue(AudibleGradCAM.masked(samples: x, map: [Float](repeating: 0, count: frames * 64), frames: frames, frontEnd: fe).allSatisfy { $0 == 0 })
    }

    func testStems() {
        XCTAssertEqual(ExplainItem.stem("s01/angry/3.wav"), "s01__angry__3")
        XCTAssertEqual(ExplainItem.stem("../a b/ü.flac"), "a_b___")
        XCTAssertEqual(ExplainItem.uniqueStems(["a/b.wav", "a/b.flac", "a/b-2.wav", "c.wav"]), ["a__b", "a__b-2", "a__b-2-2", "c"])
    }
}
