import Foundation
import Shared
import TestSupport
import XCTest

/// `ser synth`, `ser preprocess` and `ser store info` as users run them: alone and under mpirun.
final class PreprocessCommandTests: XCTestCase {
    func files(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let e = FileManager.default.enumerator(atPath: dir)!
        while let rel = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
                out[rel] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel))
            }
        }
        return out
    }

    func assertSameStore(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let fa = try files(a), fb = try files(b)
        XCTAssertEqual(fa.keys.sorted(), fb.keys.sorted(), file: file, line: line)
        XCTAssertTrue(fa.keys.contains("manifest.json") && fa.keys.contains("shards/shard-00000.seg"), file: file, line: line)
        for (k, v) in fa { XCTAssertEqual(v, fb[k], "\(k) differs", file: file, line: line) }
        // And segment by segment through the reader (same segments, same order).
        let sa = try FeatureStore.open(a), sb = try FeatureStore.open(b)
        XCTAssertEqual(sa.segmentCount, sb.segmentCount, file: file, line: line)
        let ra = sa.makeReader(), rb = sb.makeReader()
        for id in stride(from: 0, to: sa.segmentCount, by: max(1, sa.segmentCount / 50)) {
            XCTAssertEqual(try ra.read(id), try rb.read(id), file: file, line: line)
            XCTAssertEqual(sa.segment(id), sb.segment(id), file: file, line: line)
        }
    }

    func testSyntheticCorpusAndStoreAreTheSameForOneAndTwoRanks() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let synthArgs = ["--files-per-class", "12", "--speakers", "4", "--duration", "3", "--seed", "5"]
        var r = try Command.ser(["synth", "--out", dir + "/c1"] + synthArgs)
        XCTAssertEqual(r.status, 0, r.output)
        r = try Command.mpirun(2, ["synth", "--out", dir + "/c2"] + synthArgs)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try files(dir + "/c1"), try files(dir + "/c2"), "the corpus is bitwise identical whatever the ranks")

        let args = ["--corpus", "synth:" + dir + "/c1", "--shards", "5", "--block-segments", "7"]
        r = try Command.ser(["preprocess", "--out", dir + "/s1"] + args)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("files      48 (0 skipped"), r.stdout)
        r = try Command.mpirun(2, ["preprocess", "--out", dir + "/s2"] + args)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("on 2 rank(s)"), r.stdout)
        try assertSameStore(dir + "/s1", dir + "/s2")
        // Three ranks for five shards: an uneven share.
        r = try Command.mpirun(3, ["preprocess", "--out", dir + "/s3"] + args)
        XCTAssertEqual(r.status, 0, r.output)
        try assertSameStore(dir + "/s1", dir + "/s3")

        let store = try FeatureStore.open(dir + "/s1")
        XCTAssertTrue(store.files.allSatisfy { !$0.cues.isEmpty }, "cue boxes of a synth corpus reach the manifest")
        r = try Command.ser(["store", "info", dir + "/s1"])
        XCTAssertEqual(r.status, 0, r.output)
        for expected in ["per class", "0 angry", "synth:s04", "shards/shard-00004.seg", "held out: synth:", "GDS          on, T = -1"] {
            XCTAssertTrue(r.stdout.contains(expected), "missing '\(expected)' in\n\(r.stdout)")
        }
        r = try Command.ser(["store", "info", "--json", "--verify", dir + "/s1"])
        XCTAssertEqual(r.status, 0, r.output)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(json?["segmentCount"] as? Int, store.segmentCount)
    }

    func testEmoDBGivesTheSameStoreForOneAndTwoRanks() throws {
        let emodb = try TestEnv.shared("data/emodb")
        let dir = TestEnv.temporaryDirectory(self)
        let args = ["--corpus", "emodb:" + emodb, "--quiet"]
        var r = try Command.ser(["preprocess", "--out", dir + "/a"] + args)
        XCTAssertEqual(r.status, 0, r.output)
        // EmoDB: 535 files, 339 in the four classes (W 127, F 71, N 79, T 62); the rest dropped by label.
        XCTAssertTrue(r.stdout.contains("files      339 (0 skipped, 196 outside the label set)"), r.stdout)
        r = try Command.mpirun(2, ["preprocess", "--out", dir + "/b"] + args)
        XCTAssertEqual(r.status, 0, r.output)
        try assertSameStore(dir + "/a", dir + "/b")
        let m = try FeatureStore.open(dir + "/a").manifest
        XCTAssertEqual(m.droppedLabels, ["boredom": 81, "disgust": 46, "fear": 69])
        XCTAssertEqual(m.files.first?.sourceSampleRate, 22050)
        // GDS drops a share near the paper's 15 % (short 2 s files give 4 segments each).
        XCTAssertGreaterThan(m.fractionRemoved, 0.05)
        XCTAssertLessThan(m.fractionRemoved, 0.3)
    }

    func testBadInputsAreListedAndTheJobGoesOn() throws {
        let dir = TestEnv.temporaryDirectory(self)
        var r = try Command.ser(["synth", "--out", dir + "/c", "--files-per-class", "3", "--speakers", "2", "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        try AudioFile.write(dir + "/silent.wav", samples: [Float](repeating: 0, count: 20000), sampleRate: 16000)
        try AudioFile.write(dir + "/short.wav", samples: [Float](repeating: 0.1, count: 1000), sampleRate: 16000)
        try Data("not audio".utf8).write(to: URL(fileURLWithPath: dir + "/corrupt.wav"))
        try Data().write(to: URL(fileURLWithPath: dir + "/empty.flac"))
        try """
        path,label,speaker
        c/s01/angry/0.wav,angry,a
        silent.wav,sad,a
        short.wav,sad,a
        corrupt.wav,happy,b
        empty.flac,neutral,b
        gone.wav,neutral,b
        c/s02/sad/0.wav,melancholy,b
        """.write(toFile: dir + "/list.csv", atomically: true, encoding: .utf8)
        r = try Command.ser(["preprocess", "--corpus", "csv:" + dir + "/list.csv", "--corpus", "synth:" + dir + "/c",
                             "--corpus", "casia:" + dir + "/no-such-folder", "--out", dir + "/s", "--shards", "2"])
        XCTAssertEqual(r.status, 0, r.output)
        for name in ["silent.wav: silent", "short.wav: too short", "corrupt.wav: not a readable audio file", "empty.flac: empty (0 bytes)",
                     "gone.wav", "unknown label 'melancholy'", "corpus folder does not exist"] {
            XCTAssertTrue(r.stderr.contains(name), "no message for \(name) in\n\(r.stderr)")
        }
        let m = try FeatureStore.open(dir + "/s").manifest
        XCTAssertEqual(m.files.count, 13)
        XCTAssertEqual(m.skipped.count, 7)
        r = try Command.ser(["store", "info", dir + "/s"])
        XCTAssertTrue(r.stdout.contains("skipped files") && r.stdout.contains("gone.wav"), r.stdout)
    }

    func testInterruptedStoreIsReportedAndARerunFinishesIt() throws {
        let dir = TestEnv.temporaryDirectory(self)
        XCTAssertEqual(try Command.ser(["synth", "--out", dir + "/c", "--files-per-class", "4", "--quiet"]).status, 0)
        let args = ["preprocess", "--corpus", "synth:" + dir + "/c", "--out", dir + "/s", "--shards", "4"]
        XCTAssertEqual(try Command.ser(args).status, 0)
        let before = try files(dir + "/s")
        try FileManager.default.removeItem(atPath: dir + "/s/manifest.json")
        try FileManager.default.removeItem(atPath: dir + "/s/shards/shard-00002.seg")
        var r = try Command.ser(["store", "info", dir + "/s"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("incomplete") && r.stderr.contains("rerun"), r.stderr)
        r = try Command.mpirun(2, args)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("3 shard(s) reused"), r.stdout)
        XCTAssertEqual(try files(dir + "/s"), before)
    }

    func testBadOptionsGetMessagesNotCrashes() throws {
        let cases: [([String], String)] = [
            (["preprocess", "--out", "/tmp/x"], "give at least one --corpus"),
            (["preprocess", "--corpus", "iemocap:/x", "--out", "/tmp/x"], "unknown corpus kind 'iemocap'"),
            (["preprocess", "--corpus", "emodb:/x", "--out", "/tmp/x", "--labels", "angry,grumpy"], "unknown emotion 'grumpy'"),
            (["preprocess", "--corpus", "emodb:/x", "--out", "/tmp/x", "--preset", "vggish"], "--preset must be yamnet or paper48k"),
            (["preprocess", "--corpus", "emodb:/x", "--out", "/tmp/x", "--fft", "256"], "FFT length 256 is shorter than the window"),
            (["preprocess", "--corpus", "emodb:/x", "--out", "/tmp/x", "--gds", "maybe"], "--gds must be on or off"),
            (["preprocess", "--corpus", "emodb:/x", "--out", "/tmp/x", "--test-fraction", "1.5"], "--test-fraction must be between 0 and 1"),
            (["synth", "--out", "/tmp/x", "--format", "mp3"], "--format must be wav or flac"),
            (["store", "info", "/no/such/store"], "no such directory"),
        ]
        for (args, message) in cases {
            let r = try Command.ser(args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), "\(args.joined(separator: " ")): expected '\(message)' in\n\(r.stderr)")
        }
    }
}
