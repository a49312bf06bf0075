import Foundation
import Shared
import TestSupport
import Worker
import XCTest

/// `ser preprocess` in-process (a world of one): a store from a small corpus with bad files mixed
/// in, read back through the reader API and compared with an independent recomputation.
final class PreprocessJobTests: XCTestCase {
    /// A CSV corpus of synthetic speech plus every kind of bad input.
    func makeCorpus(_ dir: String) throws -> (csv: String, good: Int) {
        let synth = SynthSettings(out: dir + "/synth", filesPerClass: 6, speakers: 3, duration: 2.5, seed: 4)
        try SynthCorpus.run(synth, world: .single(), console: Console(quiet: true))
        var rows = try String(contentsOfFile: dir + "/synth/manifest.csv", encoding: .utf8)
            .split(separator: "\n").dropFirst().map { "synth/" + $0 }
        let good = rows.count
        try AudioFile.write(dir + "/silent.wav", samples: [Float](repeating: 0, count: 16000), sampleRate: 16000)
        try AudioFile.write(dir + "/short.wav", samples: (0..<3200).map { Float(sin(Double($0))) * 0.3 }, sampleRate: 16000)
        try Data("RIFF....WAVEfmt garbage".utf8).write(to: URL(fileURLWithPath: dir + "/corrupt.wav"))
        try Data().write(to: URL(fileURLWithPath: dir + "/empty.wav"))
        try AudioFile.write(dir + "/fear.wav", samples: (0..<16000).map { Float(sin(Double($0) * 0.1)) * 0.3 }, sampleRate: 16000)
        // A 44.1 kHz stereo file: resampled and mixed.
        try AudioFileTestsBridge.stereoWav(dir + "/stereo44k.wav", seconds: 1.5)
        rows += ["silent.wav,sad,x", "short.wav,happy,x", "corrupt.wav,angry,x", "empty.wav,neutral,x", "nothere.wav,sad,x",
                 "fear.wav,fear,x", "stereo44k.wav,happy,y", "stereo44k.wav,grumpy,y"]
        try ("path,label,speaker\n" + rows.joined(separator: "\n") + "\n").write(toFile: dir + "/list.csv", atomically: true, encoding: .utf8)
        return (dir + "/list.csv", good + 1)
    }

    func testStoreFromACorpusWithBadFiles() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let (csv, good) = try makeCorpus(dir)
        let settings = PreprocessSettings(corpora: [CorpusSpec(kind: .csv, path: csv)], out: dir + "/store", shards: 3, blockSegments: 5)
        let summary = try XCTUnwrap(try PreprocessJob.run(settings, world: .single(), console: Console(quiet: true)))
        let m = summary.manifest
        XCTAssertEqual(m.files.count, good)
        let reasons = Dictionary(uniqueKeysWithValues: m.skipped.map { (($0.path as NSString).lastPathComponent, $0.reason) })
        XCTAssertTrue(reasons["silent.wav"]?.hasPrefix("silent") == true, "\(reasons)")
        XCTAssertTrue(reasons["short.wav"]?.hasPrefix("too short: 0.200 s") == true, "\(reasons)")
        XCTAssertTrue(reasons["corrupt.wav"]?.contains("not a readable audio file") == true, "\(reasons)")
        XCTAssertEqual(reasons["empty.wav"], "empty (0 bytes)")
        XCTAssertTrue(reasons["nothere.wav"]?.contains("no such file") == true, "\(reasons)")
        XCTAssertTrue(reasons["stereo44k.wav"]?.contains("unknown label 'grumpy'") == true, "\(reasons)")
        XCTAssertEqual(m.droppedLabels, ["fear": 1])
        XCTAssertEqual(m.skipped.count, 6)

        // The store as the trainer sees it.
        let store = try FeatureStore.open(dir + "/store")
        XCTAssertEqual(store.segmentCount, m.segmentCount)
        XCTAssertEqual(store.shardCount, 3)
        XCTAssertEqual(store.labels, ["angry", "happy", "neutral", "sad"])
        XCTAssertEqual((0..<3).map { store.segments(inShard: $0).count }.reduce(0, +), store.segmentCount)
        XCTAssertEqual(store.segments(inShard: 1).lowerBound, store.segments(inShard: 0).upperBound)
        let stereo = try XCTUnwrap(store.files.first { $0.relativePath == "stereo44k.wav" })
        XCTAssertEqual(stereo.sourceSampleRate, 44100)
        XCTAssertEqual(stereo.label, "happy")
        XCTAssertEqual(stereo.speaker, "csv:y")
        // Files per shard differ by at most one; every file's segments are contiguous and in its shard.
        let perShard = m.shards.map(\.files)
        XCTAssertLessThanOrEqual(perShard.max()! - perShard.min()!, 1)
        for f in store.files {
            for id in f.segments {
                let s = store.segment(id)
                XCTAssertEqual(s.file, f.id)
                XCTAssertEqual(s.label, f.labelIndex)
                XCTAssertTrue(store.segments(inShard: f.shard).contains(id))
            }
            XCTAssertEqual(f.segments.filter { store.segment($0).kept }.count, f.segmentsAfter)
        }
        XCTAssertEqual(m.gdsTotals.segmentsBefore, m.files.map(\.segmentsBefore).reduce(0, +))
        XCTAssertEqual(m.perClass.values.map(\.files).reduce(0, +), m.files.count)
        XCTAssertEqual(store.segmentIDs(keptOnly: true).count, m.gdsTotals.segmentsAfter)

        // Independent recomputation: decode, resample, log-mel, cut — compare every segment of 3 files.
        let reader = store.makeReader(cacheBlocks: 2)
        let extractor = LogMelExtractor(config: .yamnet)
        for f in [store.files[0], stereo, store.files[store.files.count - 1]] {
            let clip = try AudioFile.read(f.path, resampledTo: 16000)
            let mel = extractor.logMel(clip.samples)
            let cut = extractor.patches(logMel: mel.values, frames: mel.frames)
            XCTAssertEqual(cut.count, f.segmentsBefore, f.relativePath)
            // GDS on the same patches gives the stored scores.
            let gds = GaussianDataSelection.select(cut.values, count: cut.count, length: 96 * 64, threshold: -1)
            for (k, id) in f.segments.enumerated() {
                let stored = try reader.read(id)
                XCTAssertEqual(stored, Array(cut.values[(k * 6144)..<((k + 1) * 6144)]), "\(f.relativePath) segment \(k)")
                XCTAssertEqual(store.segment(id).startFrame, cut.startFrames[k])
                XCTAssertEqual(store.segment(id).gdsScore, gds.scores[k])
                XCTAssertEqual(store.segment(id).kept, gds.kept[k])
            }
        }
        // Random access in any order through a small cache gives the same bytes.
        let reader2 = store.makeReader(cacheBlocks: 1)
        var g = SeededGenerator(seed: 3)
        for _ in 0..<30 {
            let id = g.below(store.segmentCount)
            XCTAssertEqual(try reader2.read(id), try reader.read(id))
        }
        // Splits cover every file once, on one side only.
        for kind in SplitKind.allCases {
            let s = store.split(kind)
            XCTAssertEqual((s.train + s.test).sorted(), Array(0..<store.files.count), "\(kind)")
        }
        let held = Set(m.splits.speaker.testSpeakers ?? [])
        XCTAssertFalse(held.isEmpty)
        XCTAssertTrue(store.split(.speaker).test.allSatisfy { held.contains(store.files[$0].speaker) })
        XCTAssertTrue(store.split(.speaker).train.allSatisfy { !held.contains(store.files[$0].speaker) })
        // Cue boxes travel from the synth corpus... only for kind synth; a CSV corpus has none.
        XCTAssertTrue(store.files.allSatisfy { $0.cues.isEmpty })
    }

    func testResumeKeepsGoodShardsAndRebuildsDamagedOnes() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let synth = SynthSettings(out: dir + "/c", filesPerClass: 5, speakers: 2, duration: 2, seed: 9)
        try SynthCorpus.run(synth, world: .single(), console: Console(quiet: true))
        let settings = PreprocessSettings(corpora: [CorpusSpec(kind: .synth, path: dir + "/c")], out: dir + "/s", shards: 4)
        let first = try XCTUnwrap(try PreprocessJob.run(settings, world: .single(), console: Console(quiet: true)))
        XCTAssertEqual(first.reusedShards, 0)
        XCTAssertFalse(first.manifest.files[0].cues.isEmpty, "synth corpora carry cue boxes into the manifest")
        let shard = { (s: Int) in dir + "/s/shards/" + ShardFile.name(s) }
        let original = try (0..<4).map { try Data(contentsOf: URL(fileURLWithPath: shard($0))) }
        let manifest = try Data(contentsOf: URL(fileURLWithPath: dir + "/s/manifest.json"))

        // An interrupted run: manifest gone, one shard missing, one damaged, a temporary left over.
        try FileManager.default.removeItem(atPath: dir + "/s/manifest.json")
        XCTAssertThrowsError(try FeatureStore.open(dir + "/s")) { XCTAssertTrue("\($0)".contains("incomplete")) }
        try FileManager.default.removeItem(atPath: shard(1))
        var bad = original[2]
        bad[bad.count / 3] ^= 0xFF
        try bad.write(to: URL(fileURLWithPath: shard(2)))
        try Data("partial".utf8).write(to: URL(fileURLWithPath: dir + "/s/shards/.shard-00003.seg.tmp.12345"))
        let again = try XCTUnwrap(try PreprocessJob.run(settings, world: .single(), console: Console(quiet: true)))
        XCTAssertEqual(again.reusedShards, 2)
        XCTAssertEqual(try (0..<4).map { try Data(contentsOf: URL(fileURLWithPath: shard($0))) }, original)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/s/manifest.json")), manifest)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir + "/s/shards").contains { $0.contains(".tmp.") })

        // Other settings: nothing is reused, GDS off keeps every segment with the same scores.
        var off = settings
        off.gds.enabled = false
        let third = try XCTUnwrap(try PreprocessJob.run(off, world: .single(), console: Console(quiet: true)))
        XCTAssertEqual(third.reusedShards, 0)
        XCTAssertEqual(third.manifest.gdsTotals.segmentsAfter, third.manifest.gdsTotals.segmentsBefore)
        let storeOff = try FeatureStore.open(dir + "/s")
        XCTAssertEqual(storeOff.segmentIDs(keptOnly: true).count, storeOff.segmentCount)
        XCTAssertEqual(third.manifest.segmentCount, first.manifest.segmentCount)
    }

    func testPaper48kPresetDropsTailsAndPadsShortFiles() throws {
        let dir = TestEnv.temporaryDirectory(self)
        // 0.6 s (padded to one patch) and 3.3 s: F = 1 + ⌊(158400 − 1200)/480⌋ = 328 frames, 1 + ⌊(328 − 96)/48⌋ = 5
        // patches, the last 40 frames dropped.
        try AudioFile.write(dir + "/a.wav", samples: (0..<9600).map { Float(sin(Double($0) * 0.3)) * 0.2 }, sampleRate: 16000)
        try AudioFile.write(dir + "/b.wav", samples: (0..<158400).map { Float(sin(Double($0) * 0.05)) * 0.2 + Float($0 % 13) * 0.001 }, sampleRate: 48000)
        try "path,label,speaker\na.wav,angry,p\nb.wav,sad,q\n".write(toFile: dir + "/l.csv", atomically: true, encoding: .utf8)
        let settings = PreprocessSettings(corpora: [CorpusSpec(kind: .csv, path: dir + "/l.csv")], out: dir + "/s", frontEnd: .paper48k, shards: 1)
        let m = try XCTUnwrap(try PreprocessJob.run(settings, world: .single(), console: Console(quiet: true))).manifest
        let byName = Dictionary(uniqueKeysWithValues: m.files.map { ($0.relativePath, $0) })
        XCTAssertEqual(byName["a.wav"]?.segmentsBefore, 1)
        XCTAssertEqual(byName["b.wav"]?.segmentsBefore, 5)
        XCTAssertEqual(m.frontEnd, .paper48k)
    }
}

/// A stereo 44.1 kHz WAV written by hand (libsndfile's writer is mono-only in this project).
enum AudioFileTestsBridge {
    static func stereoWav(_ path: String, seconds: Double) throws {
        let n = Int(44100 * seconds)
        var d = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: Array("RIFF".utf8)); u32(36 + n * 4)
        d.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16); u16(1); u16(2); u32(44100); u32(44100 * 4); u16(4); u16(16)
        d.append(contentsOf: Array("data".utf8)); u32(n * 4)
        for i in 0..<n {
            let t = Double(i) / 44100
            let l = Int16(8000 * sin(2 * Double.pi * 440 * t)), r = Int16(6000 * sin(2 * Double.pi * 1250 * t + 0.3))
            withUnsafeBytes(of: l.littleEndian) { d.append(contentsOf: $0) }
            withUnsafeBytes(of: r.littleEndian) { d.append(contentsOf: $0) }
        }
        try d.write(to: URL(fileURLWithPath: path))
    }
}
