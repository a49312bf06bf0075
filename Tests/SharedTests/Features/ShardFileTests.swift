import Foundation
import Shared
import TestSupport
import XCTest

/// The shard format: what is written is read back, and damage is detected, never returned as data.
final class ShardFileTests: XCTestCase {
    var config: FrontEndConfig {
        var c = FrontEndConfig.yamnet
        c.patchFrames = 4
        c.melBands = 3  // tiny segments keep the test data readable
        c.fMin = 300
        return c
    }

    func writeShard(_ path: String, segmentsPerFile: [Int], blockSegments: Int) throws -> (ShardIndex, [[Float]]) {
        let w = try ShardWriter(path: path, shard: 2, frontEnd: config, settingsHash: "abc", assigned: ["/a", "/b", "/c"], blockSegments: blockSegments)
        var all: [[Float]] = []
        for (f, n) in segmentsPerFile.enumerated() {
            let segs = (0..<n).map { s in (0..<12).map { Float(f * 1000 + s * 12 + $0) } }
            all += segs
            let gds = GaussianDataSelection.Result(scores: (0..<n).map { $0 == 0 ? nil : Double($0) }, kept: (0..<n).map { $0 % 2 == 1 })
            let flat = segs.flatMap { $0 }
            try flat.withUnsafeBufferPointer {
                try w.add(ShardFileRecord(canonical: f, path: "/f\(f)", durationSeconds: 1, sourceSampleRate: 16000, channels: 1),
                          segments: $0, startFrames: (0..<n).map { $0 * 2 }, gds: gds)
            }
        }
        w.skip(SkippedFile(path: "/bad", reason: "silent"))
        return (try w.finish(), all)
    }

    func testRoundTripAcrossBlockBoundaries() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let p = dir + "/" + ShardFile.name(2)
        XCTAssertEqual(ShardFile.name(2), "shard-00002.seg")
        let (written, segs) = try writeShard(p, segmentsPerFile: [3, 5, 2], blockSegments: 4)
        XCTAssertEqual(try String(contentsOfFile: p, encoding: .isoLatin1).prefix(8), "SERSHARD")
        let idx = try ShardFile.readIndex(p)
        XCTAssertEqual(idx, written)
        XCTAssertEqual(idx.blocks.map(\.count), [4, 4, 2], "blocks of 4 segments regardless of file boundaries")
        XCTAssertEqual(idx.files.map(\.firstSegment), [0, 3, 8])
        XCTAssertEqual(idx.files.map(\.segmentsAfter), [1, 2, 1])
        XCTAssertEqual(idx.files.map(\.constantSegments), [1, 1, 1])
        XCTAssertEqual(idx.segments.indexInFile, [0, 1, 2, 0, 1, 2, 3, 4, 0, 1])
        XCTAssertEqual(idx.segments.file, [0, 0, 0, 1, 1, 1, 1, 1, 2, 2])
        XCTAssertEqual(idx.segments.score[0], nil)
        XCTAssertEqual(idx.skipped, [SkippedFile(path: "/bad", reason: "silent")])
        try ShardFile.verifyBlocks(p, idx)
        // The bytes of a block decompress (with the zstd CLI too) to the segments in order.
        let fh = try FileHandle(forReadingFrom: URL(fileURLWithPath: p))
        try fh.seek(toOffset: UInt64(idx.blocks[1].offset))
        let packed = fh.readData(ofLength: idx.blocks[1].length)
        let raw = try Zstd.decompress(packed)
        let floats = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(floats, Array(segs[4..<8].joined()))
        // No temporary file is left next to the shard.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["shard-00002.seg"])
    }

    func testDamageIsDetected() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let p = dir + "/s.seg"
        let (idx, _) = try writeShard(p, segmentsPerFile: [6, 6], blockSegments: 4)
        let good = try Data(contentsOf: URL(fileURLWithPath: p))
        // A flipped byte inside a block: the block's checksum (or zstd's) fails.
        var bad = good
        bad[idx.blocks[1].offset + idx.blocks[1].length / 2] ^= 0x5A
        try bad.write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try ShardFile.verifyBlocks(p, try ShardFile.readIndex(p))) { XCTAssertTrue("\($0)".contains("block 1"), "\($0)") }
        // A flipped byte in the index.
        bad = good
        bad[good.count - ShardFile.trailerSize - 10] ^= 0x01
        try bad.write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try ShardFile.readIndex(p)) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
        // Truncation: the trailer is gone.
        try good.prefix(good.count - 100).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try ShardFile.readIndex(p)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        // Not a shard at all.
        try Data(repeating: 7, count: 200).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try ShardFile.readIndex(p)) { XCTAssertTrue("\($0)".contains("not a feature shard"), "\($0)") }
    }

    func testAnAbandonedWriterLeavesNothingBehind() throws {
        let dir = TestEnv.temporaryDirectory(self)
        do {
            let w = try ShardWriter(path: dir + "/x.seg", shard: 0, frontEnd: config, settingsHash: "h", assigned: [], blockSegments: 2)
            let values = [Float](repeating: 1, count: 12)
            try values.withUnsafeBufferPointer {
                try w.add(ShardFileRecord(canonical: 0, path: "/a", durationSeconds: 1, sourceSampleRate: 16000, channels: 1),
                          segments: $0, startFrames: [0], gds: GaussianDataSelection.Result(scores: [0], kept: [true]))
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testMissingOrIncompleteStoreIsExplained() throws {
        let dir = TestEnv.temporaryDirectory(self)
        XCTAssertThrowsError(try FeatureStore.open(dir + "/nothing")) { XCTAssertTrue("\($0)".contains("no such directory"), "\($0)") }
        try FileManager.default.createDirectory(atPath: dir + "/st/shards", withIntermediateDirectories: true)
        XCTAssertThrowsError(try FeatureStore.open(dir + "/st")) { XCTAssertTrue("\($0)".contains("incomplete"), "\($0)") }
    }
}
