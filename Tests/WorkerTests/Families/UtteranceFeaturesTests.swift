import Foundation
import Shared
import TestSupport
import Worker
import XCTest

/// The autoencoders' utterance features: names, values on a hand-made log-mel, reassembly from
/// overlapping segments, and the whole path from a real store against the audio itself.
final class UtteranceFeaturesTests: XCTestCase {
    func testNamesAreFixedAndOrdered() {
        let names = UtteranceFeatures.names(bands: 64)
        XCTAssertEqual(names.count, 256)
        XCTAssertEqual(names[0], "mean_mel_00")
        XCTAssertEqual(names[63], "mean_mel_63")
        XCTAssertEqual(names[64], "std_mel_00")
        XCTAssertEqual(names[128], "mean_delta_00")
        XCTAssertEqual(names[255], "std_delta_63")
        XCTAssertEqual(Set(names).count, 256)
    }

    /// Two bands, five frames: band 0 = 1, 2, 3, 4, 5 and band 1 constant 7.
    ///
    /// Band 0: mean 3, population std √2. Deltas with the edges repeated (c₋₂ = c₋₁ = 1,
    /// c₅ = c₆ = 5), d_t = [(c_{t+1} − c_{t−1}) + 2(c_{t+2} − c_{t−2})]/10:
    /// d = (1 + 4)/10, (2 + 6)/10, (2 + 8)/10, (2 + 6)/10, (1 + 4)/10 = 0.5, 0.8, 1, 0.8, 0.5;
    /// mean 0.72, std √((0.0484 + 0.0064 + 0.0784 + 0.0064 + 0.0484)/5) = √0.0376.
    /// Band 1: mean 7, std 0, deltas 0.
    func testFeaturesOfAHandMadeLogMel() {
        let frames = 5
        var m = [Float](repeating: 0, count: frames * 2)
        for t in 0..<frames { m[t * 2] = Float(t + 1); m[t * 2 + 1] = 7 }
        let f = UtteranceFeatures.compute(logMel: m, frames: frames, bands: 2)
        XCTAssertEqual(f.count, 8)
        let expected: [Double] = [3, 7, 2.0.squareRoot(), 0, 0.72, 0, 0.0376.squareRoot(), 0]
        for (a, b) in zip(f, expected) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        // One frame: the deltas are 0, the standard deviations 0.
        let one = UtteranceFeatures.compute(logMel: [Float(2), 3], frames: 1, bands: 2)
        XCTAssertEqual(one, [2, 3, 0, 0, 0, 0, 0, 0])
    }

    func testReassemblyFromOverlappingSegments() {
        let bands = 3, total = 200
        let matrix = (0..<(total * bands)).map { Float($0) * 0.5 }
        // Segments of 96 frames every 48, as the store keeps them: they cover frames 0..<192.
        let starts = [0, 48, 96]
        let segs = starts.map { Array(matrix[($0 * bands) ..< (($0 + 96) * bands)]) }
        let a = UtteranceFeatures.reassemble(segments: segs, startFrames: starts, patchFrames: 96, bands: bands, frames: 150)
        XCTAssertEqual(a.frames, 150)
        XCTAssertEqual(a.values, Array(matrix[0 ..< (150 * bands)]))
        let b = UtteranceFeatures.reassemble(segments: segs.reversed(), startFrames: starts.reversed(), patchFrames: 96, bands: bands, frames: 1000)
        XCTAssertEqual(b.frames, 192)
        XCTAssertEqual(b.values, Array(matrix[0 ..< (192 * bands)]))
    }

    func testAudioFramesLeaveOutThePadding() {
        // 2 s at 16 kHz: 1 + (32000 − 400)/160 = 198 whole windows (the yamnet rule pads to 38640 samples, 240 frames).
        XCTAssertEqual(UtteranceFeatures.audioFrames(durationSeconds: 2, frontEnd: .yamnet), 198)
        XCTAssertEqual(FrontEndConfig.yamnet.frameCount(paddedLength: FrontEndConfig.yamnet.paddedLength(32000)), 240)
        XCTAssertEqual(UtteranceFeatures.audioFrames(durationSeconds: 0.001, frontEnd: .yamnet), 1)
    }

    /// Features read back from a store equal those computed from the audio files directly.
    func testStoreFeaturesEqualTheAudiosOwn() throws {
        let dir = TestEnv.temporaryDirectory(self)
        try SynthCorpus.run(SynthSettings(out: dir + "/synth", filesPerClass: 2, speakers: 2, duration: 2.3, seed: 9),
                            world: .single(), console: Console(quiet: true))
        let settings = PreprocessSettings(corpora: [CorpusSpec(kind: .synth, path: dir + "/synth")], out: dir + "/store", shards: 2, blockSegments: 3)
        _ = try PreprocessJob.run(settings, world: .single(), console: Console(quiet: true))
        let store = try FeatureStore.open(dir + "/store")
        let rows = try UtteranceFeatures.table(store: store, files: Array(store.files.indices), world: .single())
        let extractor = LogMelExtractor(config: store.frontEnd)
        for (id, row) in rows.enumerated() {
            let f = store.files[id]
            var clip = try AudioFile.read(f.path)
            if clip.sampleRate != store.frontEnd.sampleRate {
                clip.samples = try AudioFile.resample(clip.samples, from: clip.sampleRate, to: store.frontEnd.sampleRate,
                                                      quality: store.manifest.options.resampler)
            }
            let mel = extractor.logMel(clip.samples)
            let frames = UtteranceFeatures.audioFrames(durationSeconds: f.durationSeconds, frontEnd: store.frontEnd)
            XCTAssertLessThan(frames, mel.frames, "the padded tail is left out")
            let direct = UtteranceFeatures.compute(logMel: Array(mel.values.prefix(frames * 64)), frames: frames, bands: 64)
            XCTAssertEqual(row.count, 256)
            for j in 0..<256 { XCTAssertEqual(row[j], direct[j], accuracy: 1e-9, "\(f.relativePath) feature \(j)") }
        }
    }
}
