import Foundation
import Shared
import TestSupport
import XCTest

/// Decoding, mono mixing, resampling and writing, on files whose content is known exactly.
final class AudioFileTests: XCTestCase {
    /// A 16-bit PCM WAV built byte by byte (independent of libsndfile's writer).
    static func wavBytes(_ frames: [[Int16]], rate: Int, claimFrames: Int? = nil) -> Data {
        let ch = frames.first?.count ?? 1
        let dataBytes = (claimFrames ?? frames.count) * ch * 2
        var d = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: Array("RIFF".utf8)); u32(36 + dataBytes)
        d.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16); u16(1); u16(ch); u32(rate); u32(rate * ch * 2); u16(ch * 2); u16(16)
        d.append(contentsOf: Array("data".utf8)); u32(dataBytes)
        for f in frames { for s in f { withUnsafeBytes(of: s.littleEndian) { d.append(contentsOf: $0) } } }
        return d
    }

    func testStereoIsMixedToTheMeanOfItsChannels() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let frames: [[Int16]] = [[16384, 0], [-32768, 32767], [100, 300], [0, -16384]]
        try Self.wavBytes(frames, rate: 8000).write(to: URL(fileURLWithPath: dir + "/st.wav"))
        let clip = try AudioFile.read(dir + "/st.wav")
        XCTAssertEqual(clip.channels, 2)
        XCTAssertEqual(clip.sampleRate, 8000)
        XCTAssertEqual(clip.samples, frames.map { (Float($0[0]) / 32768 + Float($0[1]) / 32768) / 2 })
        let info = try AudioFile.info(dir + "/st.wav")
        XCTAssertEqual(info, AudioFileInfo(frames: 4, sampleRate: 8000, channels: 2))
    }

    func testWriteReadRoundTripWavAndFlac() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let x = (0..<5000).map { Float(0.6 * sin(Double($0) * 0.05)) }
        for ext in ["wav", "flac"] {
            let p = dir + "/a.\(ext)"
            try AudioFile.write(p, samples: x, sampleRate: 16000)
            let back = try AudioFile.read(p)
            XCTAssertEqual(back.sampleRate, 16000)
            XCTAssertEqual(back.samples.count, x.count)
            let err = zip(back.samples, x).map { abs($0 - $1) }.max() ?? 1
            XCTAssertLessThanOrEqual(err, 1.0 / 32768 + 1e-7, "\(ext): 16-bit quantisation only")
        }
        // Clipping instead of wrap-around for values beyond full scale.
        try AudioFile.write(dir + "/loud.wav", samples: [2, -2, 0.5], sampleRate: 8000)
        let loud = try AudioFile.read(dir + "/loud.wav").samples
        XCTAssertGreaterThan(loud[0], 0.99)
        XCTAssertLessThan(loud[1], -0.99)
        XCTAssertThrowsError(try AudioFile.write(dir + "/x.mp4", samples: x, sampleRate: 16000)) {
            XCTAssertTrue("\($0)".contains("x.mp4"), "\($0)")
        }
    }

    func testResamplingKeepsFrequencyAndLength() throws {
        // 1 kHz at 22.05 kHz → 16 kHz: the output is N·16000/22050 samples of a 1 kHz sine.
        let n = 22050
        let x = (0..<n).map { Float(0.5 * sin(2 * Double.pi * 1000 * Double($0) / 22050)) }
        let y = try AudioFile.resample(x, from: 22050, to: 16000)
        XCTAssertEqual(Double(y.count), Double(n) * 16000 / 22050, accuracy: 2)
        // Away from the edges, the best sinc converter matches the ideal sine to about -90 dB.
        var worst = 0.0
        for i in 2000..<(y.count - 2000) {
            worst = max(worst, abs(Double(y[i]) - 0.5 * sin(2 * Double.pi * 1000 * Double(i) / 16000)))
        }
        XCTAssertLessThan(worst, 1e-3)
        XCTAssertEqual(try AudioFile.resample(x, from: 22050, to: 22050), x)
    }

    func testBadFilesGetMessagesNamingThem() throws {
        let dir = TestEnv.temporaryDirectory(self)
        XCTAssertThrowsError(try AudioFile.read(dir + "/missing.wav")) { XCTAssertTrue("\($0)".contains("missing.wav: no such file"), "\($0)") }
        try Data("this is not audio at all, just text".utf8).write(to: URL(fileURLWithPath: dir + "/text.wav"))
        XCTAssertThrowsError(try AudioFile.read(dir + "/text.wav")) { XCTAssertTrue("\($0)".contains("text.wav: not a readable audio file"), "\($0)") }
        try Self.wavBytes([], rate: 16000).write(to: URL(fileURLWithPath: dir + "/empty.wav"))
        XCTAssertThrowsError(try AudioFile.read(dir + "/empty.wav")) { XCTAssertTrue("\($0)".contains("empty.wav: empty"), "\($0)") }
        // A FLAC cut in the middle of its frames.
        let x = (0..<40000).map { Float(0.3 * sin(Double($0) * 0.01)) + Float($0 % 7) * 0.01 }
        try AudioFile.write(dir + "/whole.flac", samples: x, sampleRate: 16000)
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir + "/whole.flac"))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.flac"))
        XCTAssertThrowsError(try AudioFile.read(dir + "/cut.flac")) { XCTAssertTrue("\($0)".contains("cut.flac"), "\($0)") }
    }
}
