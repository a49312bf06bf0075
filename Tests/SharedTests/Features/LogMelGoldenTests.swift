import Foundation
import Shared
import TestSupport
import XCTest

/// The front end against the golden references of ../shared/golden (README sections 2 and 3):
/// TensorFlow's YAMNet SavedModel (16 kHz) and the numpy float64 front end (both presets).
final class LogMelGoldenTests: XCTestCase {
    /// The README's float32 tolerances: 2e-4 where mel > 0.01 (log-mel > ln 0.011), 1e-2 elsewhere.
    func assertLogMel(_ mine: [Float], _ ref: [Double], frames: Int, bands: Int, _ what: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(mine.count, frames * bands, "\(what): size", file: file, line: line)
        guard mine.count == ref.count else { return }
        let loud = log(0.011)
        var worstLoud = 0.0, worstAll = 0.0, loudCells = 0
        for i in 0..<ref.count {
            let d = abs(Double(mine[i]) - ref[i])
            worstAll = max(worstAll, d)
            if ref[i] > loud { worstLoud = max(worstLoud, d); loudCells += 1 }
        }
        XCTAssertGreaterThan(loudCells, ref.count / 20, "\(what): the reference should have many loud cells", file: file, line: line)
        XCTAssertLessThanOrEqual(worstLoud, 2e-4, "\(what): max |d| where mel > 0.01", file: file, line: line)
        XCTAssertLessThanOrEqual(worstAll, 1e-2, "\(what): max |d| everywhere", file: file, line: line)
    }

    func testYAMNetPresetMatchesTheSavedModelReference() throws {
        let golden = try SafeTensors.read(path: try TestEnv.shared("golden/yamnet16k.safetensors"))
        let config = FrontEndConfig.yamnet
        let bank = MelFilterbank(config: config)
        let refMel = try golden.require("frontend/mel_matrix_257x64").doubles()
        XCTAssertEqual(bank.dense.count, refMel.count)
        XCTAssertLessThan(zip(bank.dense, refMel).map { abs($0 - $1) }.max() ?? 1, 1e-12, "mel matrix")
        XCTAssertEqual(bank.usedBins, 5..<240, "README: non-zero rows are bins 5..239")
        XCTAssertEqual(bank.bands[0].weights.count, 1, "README: band 0 has a single non-zero bin")

        let extractor = LogMelExtractor(config: config)
        for (tag, frames, patches) in [("casia", 192, 3), ("synth", 384, 7)] {
            let wave = try golden.require("\(tag)/waveform").floats()
            let out = extractor.logMel(wave)
            XCTAssertEqual(Int64(out.paddedLength), try golden.require("\(tag)/padded_length").int64s()[0], tag)
            XCTAssertEqual(out.frames, frames, tag)
            assertLogMel(out.values, try golden.require("\(tag)/log_mel_f64").doubles(), frames: frames, bands: 64, "\(tag) log-mel")
            // The SavedModel's own float32 log-mel, framed into patches (its float32 FFT differs from
            // float64 by up to 4.6e-3 in near-silent cells: same tolerance as above).
            let cut = extractor.patches(logMel: out.values, frames: out.frames)
            XCTAssertEqual(cut.count, patches, tag)
            XCTAssertEqual(cut.startFrames, (0..<patches).map { $0 * 48 })
            let refPatches = try golden.require("\(tag)/patches").doubles()
            assertLogMel(cut.values, refPatches, frames: patches * 96, bands: 64, "\(tag) patches")
        }
    }

    func testPaper48kPresetMatchesTheNumpyReference() throws {
        let golden = try SafeTensors.read(path: try TestEnv.shared("golden/paper48k.safetensors"))
        let config = FrontEndConfig.paper48k
        let bank = MelFilterbank(config: config)
        let refMel = try golden.require("frontend/mel_matrix_601x64").doubles()
        XCTAssertLessThan(zip(bank.dense, refMel).map { abs($0 - $1) }.max() ?? 1, 1e-12, "mel matrix")
        XCTAssertEqual(bank.usedBins, 4..<188, "README: non-zero rows are bins 4..187")
        XCTAssertEqual(bank.bands.filter { $0.weights.count == 1 }.count, 3, "README: three bands have a single bin")

        let extractor = LogMelExtractor(config: config)
        for (tag, padded, frames, patches) in [("long", 192000, 398, 7), ("short", 46800, 96, 1)] {
            let wave = try golden.require("\(tag)/waveform").floats()
            let out = extractor.logMel(wave)
            XCTAssertEqual(out.paddedLength, padded, tag)
            XCTAssertEqual(Int64(out.paddedLength), try golden.require("\(tag)/padded_length").int64s()[0], tag)
            XCTAssertEqual(out.frames, frames, tag)
            assertLogMel(out.values, try golden.require("\(tag)/log_mel").doubles(), frames: frames, bands: 64, "\(tag) log-mel")
            let cut = extractor.patches(logMel: out.values, frames: out.frames)
            XCTAssertEqual(cut.count, patches, "\(tag): trailing frames beyond the last full patch are dropped")
            assertLogMel(cut.values, try golden.require("\(tag)/patches").doubles(), frames: patches * 96, bands: 64, "\(tag) patches")
        }
    }

    func testCasiaFlacDecodesToTheGoldenWaveform() throws {
        let golden = try SafeTensors.read(path: try TestEnv.shared("golden/yamnet16k.safetensors"))
        let clip = try AudioFile.read(try TestEnv.shared("data/casia/liuchanhg/angry/201.flac"))
        XCTAssertEqual(clip.sampleRate, 16000)
        XCTAssertEqual(clip.samples, try golden.require("casia/waveform").floats(), "libsndfile's int16/32768 equals soundfile's")
    }

    func testPaddingRulesByHand() {
        // YAMNet: N' = 15600 + 7680·ceil(max(N − 15600, 0)/7680) (README section 2, step 1).
        let y = FrontEndConfig.yamnet
        for (n, expect) in [(1, 15600), (100, 15600), (15599, 15600), (15600, 15600), (15601, 23280),
                            (23280, 23280), (23281, 30960), (30960, 30960), (30961, 38640)] {
            XCTAssertEqual(y.paddedLength(n), expect, "yamnet N = \(n)")
            XCTAssertEqual(y.patchCount(frames: y.frameCount(paddedLength: expect)), 1 + (expect - 15600) / 7680)
        }
        // paper48k: only clips shorter than one patch (46800 samples) are padded, to exactly one patch.
        let p = FrontEndConfig.paper48k
        XCTAssertEqual(p.paddedLength(24000), 46800)
        XCTAssertEqual(p.paddedLength(46799), 46800)
        XCTAssertEqual(p.paddedLength(46801), 46801)
        XCTAssertEqual(p.frameCount(paddedLength: 192000), 398)
        XCTAssertEqual(p.patchCount(frames: 398), 7)
    }

    func testConfigHashIsStableAndSensitive() {
        XCTAssertEqual(FrontEndConfig.yamnet.hash, FrontEndConfig.yamnet.hash)
        XCTAssertEqual(FrontEndConfig.yamnet.hash.count, 16)
        var c = FrontEndConfig.yamnet
        c.patchHop = 24
        XCTAssertNotEqual(c.hash, FrontEndConfig.yamnet.hash)
        XCTAssertNotEqual(FrontEndConfig.paper48k.hash, FrontEndConfig.yamnet.hash)
        let edges = FrontEndConfig.yamnet.melBandEdgesHz
        XCTAssertEqual(edges.count, 66)
        XCTAssertEqual(edges.first!, 125, accuracy: 1e-9)
        XCTAssertEqual(edges.last!, 7500, accuracy: 1e-6)
        var bad = FrontEndConfig.yamnet
        bad.fftLength = 256
        XCTAssertNotNil(bad.problem)
        XCTAssertNil(FrontEndConfig.paper48k.problem)
    }

    func testFastMathAgainstLibm() {
        var worstLn = 0.0, worstSqrt = 0.0
        var x: Float = 1e-3
        while x < 1e5 {
            let l = Double(FastMath.ln(x)), ref = log(Double(x))
            worstLn = max(worstLn, abs(l - ref) / max(abs(ref), 1e-30) * (abs(ref) > 1e-3 ? 1 : 0), abs(ref) <= 1e-3 ? abs(l - ref) : 0)
            let s = Double(FastMath.sqrt(x)), sr = Double(x).squareRoot()
            worstSqrt = max(worstSqrt, abs(s - sr) / sr)
            x = x.nextUp * 1.0001
        }
        XCTAssertLessThan(worstLn, 1e-6, "ln relative error")
        XCTAssertLessThan(worstSqrt, 1e-6, "sqrt relative error")
        XCTAssertEqual(FastMath.sqrt(0), 0)
        XCTAssertEqual(Double(FastMath.ln(1)), 0, accuracy: 1e-7)
    }
}
