import Foundation
import Shared
import TestSupport
import XCTest

/// Corpus layouts on tiny fake trees named like the real corpora, and on ../shared/data when present.
final class CorpusScannerTests: XCTestCase {
    func tone(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AudioFile.write(path, samples: (0..<1600).map { Float(0.1 * sin(Double($0) * 0.2)) }, sampleRate: 16000)
    }

    func scan(_ kind: CorpusKind, _ root: String) -> CorpusScanner.Outcome {
        CorpusScanner.scan(CorpusSpec(kind: kind, path: root), index: 0)
    }

    func summary(_ o: CorpusScanner.Outcome) -> [String] {
        o.entries.map { "\($0.relativePath) \($0.emotion ?? "?") \($0.speaker)" }
    }

    func testEmoDBNames() throws {
        let root = TestEnv.temporaryDirectory(self) + "/emodb"
        for n in ["wav/03a01Wa.wav", "wav/03a01Fa.wav", "wav/16b10Tb.wav", "wav/11a02Nc.wav", "wav/08a01Lb.wav", "wav/12a01Xa.wav", "wav/bad.wav"] { try tone(root + "/" + n) }
        try Data("notes".utf8).write(to: URL(fileURLWithPath: root + "/README.txt"))
        let o = scan(.emodb, root)
        XCTAssertEqual(summary(o), ["wav/03a01Fa.wav happy emodb:03", "wav/03a01Wa.wav angry emodb:03", "wav/08a01Lb.wav boredom emodb:08",
                                    "wav/11a02Nc.wav neutral emodb:11", "wav/12a01Xa.wav ? emodb:12", "wav/16b10Tb.wav sad emodb:16"])
        XCTAssertEqual(o.skipped.count, 1)
        XCTAssertTrue(o.skipped[0].reason.contains("EmoDB pattern"), o.skipped[0].reason)
    }

    func testRAVDESSCremaDAndTESSNames() throws {
        let root = TestEnv.temporaryDirectory(self)
        for n in ["Actor_12/03-01-05-01-02-01-12.wav", "Actor_01/03-01-01-01-01-01-01.wav", "Actor_01/03-01-02-01-01-01-01.wav", "Actor_02/03-01-08-02-01-01-02.wav"] {
            try tone(root + "/ravdess/" + n)
        }
        XCTAssertEqual(summary(scan(.ravdess, root + "/ravdess")),
                       ["Actor_01/03-01-01-01-01-01-01.wav neutral ravdess:01", "Actor_01/03-01-02-01-01-01-01.wav calm ravdess:01",
                        "Actor_02/03-01-08-02-01-01-02.wav surprise ravdess:02", "Actor_12/03-01-05-01-02-01-12.wav angry ravdess:12"])
        for n in ["1001_DFA_ANG_XX.wav", "1002_IEO_SAD_HI.wav", "1091_TSI_FEA_XX.wav", "1001_ITH_HAP_LO.wav"] { try tone(root + "/cremad/AudioWAV/" + n) }
        XCTAssertEqual(summary(scan(.cremad, root + "/cremad")),
                       ["AudioWAV/1001_DFA_ANG_XX.wav angry cremad:1001", "AudioWAV/1001_ITH_HAP_LO.wav happy cremad:1001",
                        "AudioWAV/1002_IEO_SAD_HI.wav sad cremad:1002", "AudioWAV/1091_TSI_FEA_XX.wav fear cremad:1091"])
        for n in ["OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_youth_ps.wav", "OAF_Sad/OAF_bath_sad.wav", "YAF_neutral/YAF_base_neutral.wav"] {
            try tone(root + "/tess/" + n)
        }
        XCTAssertEqual(summary(scan(.tess, root + "/tess")),
                       ["OAF_Sad/OAF_bath_sad.wav sad tess:OAF", "OAF_angry/OAF_back_angry.wav angry tess:OAF",
                        "YAF_neutral/YAF_base_neutral.wav neutral tess:YAF", "YAF_pleasant_surprised/YAF_youth_ps.wav surprise tess:YAF"])
    }

    func testCASIAFoldersAndCSVManifest() throws {
        let root = TestEnv.temporaryDirectory(self)
        for n in ["liuchanhg/angry/201.wav", "liuchanhg/surprise/251.wav", "wangzhe/sad/301.flac", "wangzhe/happy/302.wav"] { try tone(root + "/casia/" + n) }
        XCTAssertEqual(summary(scan(.casia, root + "/casia")),
                       ["liuchanhg/angry/201.wav angry casia:liuchanhg", "liuchanhg/surprise/251.wav surprise casia:liuchanhg",
                        "wangzhe/happy/302.wav happy casia:wangzhe", "wangzhe/sad/301.flac sad casia:wangzhe"])

        try tone(root + "/mine/a.wav")
        try tone(root + "/mine/sub/b.wav")
        try tone("\(root)/elsewhere.wav")
        try """
        path,label,speaker
        a.wav,Anger,spk1
        sub/b.wav,sadness,spk2
        missing.wav,happy,spk1
        a.wav,grumpy,spk1
        \(root)/elsewhere.wav,neutral,"spk,3"
        sub/b.wav,sad,
        """.write(toFile: root + "/mine/list.csv", atomically: true, encoding: .utf8)
        let o = CorpusScanner.scan(CorpusSpec(kind: .csv, path: root + "/mine/list.csv"), index: 2)
        XCTAssertEqual(o.entries.map { "\($0.relativePath) \($0.emotion ?? "?") \($0.speaker) \($0.corpus)" },
                       ["\(root)/elsewhere.wav neutral csv:spk,3 2", "a.wav angry csv:spk1 2", "a.wav ? csv:spk1 2", "sub/b.wav sad csv:spk2 2"])
        XCTAssertEqual(o.entries[1].path, root + "/mine/a.wav")
        XCTAssertEqual(o.skipped.count, 2)
        XCTAssertTrue(o.skipped.contains { $0.reason.contains("row 4: no such file 'missing.wav'") }, "\(o.skipped)")
        XCTAssertTrue(o.skipped.contains { $0.reason.contains("row 7: empty speaker") }, "\(o.skipped)")

        try "file,emotion\n".write(toFile: root + "/bad.csv", atomically: true, encoding: .utf8)
        let bad = CorpusScanner.scan(CorpusSpec(kind: .csv, path: root + "/bad.csv"), index: 0)
        XCTAssertTrue(bad.skipped.first?.reason.contains("no 'path' column") == true, "\(bad.skipped)")
        let gone = scan(.casia, root + "/nope")
        XCTAssertTrue(gone.skipped.first?.reason.contains("corpus folder does not exist") == true)
    }

    func testSpecParsingAndLabelSets() throws {
        XCTAssertEqual(try CorpusSpec(parsing: "emodb:/data/x/../emodb"), CorpusSpec(kind: .emodb, path: "/data/emodb"))
        XCTAssertThrowsError(try CorpusSpec(parsing: "iemocap:/x")) { XCTAssertTrue("\($0)".contains("unknown corpus kind 'iemocap'")) }
        XCTAssertThrowsError(try CorpusSpec(parsing: "/just/a/path"))
        XCTAssertEqual(try LabelSet(["Anger", "joy", "neutral", "sadness"]).names, ["angry", "happy", "neutral", "sad"])
        XCTAssertThrowsError(try LabelSet(["angry", "grumpy"])) { XCTAssertTrue("\($0)".contains("unknown emotion 'grumpy'")) }
        XCTAssertThrowsError(try LabelSet(["angry", "anger"]))
    }

    func testRealEmoDBAndCASIA() throws {
        let emodb = try TestEnv.shared("data/emodb")
        let e = scan(.emodb, emodb)
        XCTAssertEqual(e.entries.count, 535)
        XCTAssertEqual(e.skipped, [])
        XCTAssertEqual(Set(e.entries.map(\.speaker)).count, 10)
        let counts = Dictionary(grouping: e.entries, by: { $0.emotion ?? "?" }).mapValues(\.count)
        XCTAssertEqual(counts["angry"], 127)
        XCTAssertEqual(counts["sad"], 62)
        XCTAssertNil(counts["?"])
        let casia = try TestEnv.shared("data/casia")
        let c = scan(.casia, casia)
        XCTAssertEqual(c.entries.count, 1200)
        XCTAssertEqual(Set(c.entries.map(\.speaker)).count, 4)
        XCTAssertEqual(Dictionary(grouping: c.entries, by: { $0.emotion ?? "?" }).mapValues(\.count),
                       ["angry": 200, "fear": 200, "happy": 200, "neutral": 200, "sad": 200, "surprise": 200])
    }
}
