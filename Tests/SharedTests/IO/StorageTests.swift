import Foundation
import Shared
import TestSupport
import XCTest

final class StorageTests: XCTestCase {
    func testXXHash64MatchesPublishedVectors() {
        // Reference values from the xxHash specification / xxhsum -H64.
        XCTAssertEqual(XXHash64.hash([UInt8]()), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXHash64.hash(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(XXHash64.hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXHash64.hash(Array("Nobody inspects the spammish repetition".utf8)), 0xFBCE_A83C_8A37_8BF1)
    }

    func testZstdRoundTripAndCorruptionDetected() throws {
        let values = (0..<100_000).map { Float(sin(Double($0) * 0.01)) }
        let raw = values.withUnsafeBufferPointer { Data(buffer: $0) }
        let packed = try Zstd.compress(raw, level: 3)
        XCTAssertLessThan(packed.count, raw.count)
        XCTAssertEqual(try Zstd.decompress(packed), raw)
        // Truncation and a flipped byte are both reported, never returned as data.
        XCTAssertThrowsError(try Zstd.decompress(packed.prefix(packed.count / 2), source: "x.zst")) {
            XCTAssertTrue("\($0)".contains("x.zst"))
        }
        var flipped = packed
        flipped[packed.count / 2] ^= 0xFF
        XCTAssertThrowsError(try Zstd.decompress(flipped, source: "y.zst"))
    }

    func testZstdOutputOpensWithTheCommandLineTool() throws {
        guard let zstd = Command.which("zstd") else { throw XCTSkip("zstd CLI not installed") }
        let dir = TestEnv.temporaryDirectory(self)
        let raw = Data((0..<50_000).map { UInt8($0 % 251) })
        try AtomicFile.write(try Zstd.compress(raw), to: dir + "/a.zst")
        let r = try Command.run(zstd, ["-d", "-f", dir + "/a.zst", "-o", dir + "/a"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/a")), raw)
    }

    func testAtomicWriteReplacesWholeFileAndLeavesNoTemporaries() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let path = dir + "/sub/file.txt"
        try AtomicFile.write("first", to: path)
        try AtomicFile.write("second version", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "second version")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/sub").filter { $0 != "file.txt" }
        XCTAssertEqual(leftovers, [])
        // A failing writer leaves the previous content in place.
        struct Boom: Error {}
        XCTAssertThrowsError(try AtomicFile.write(to: path) { _ in throw Boom() })
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "second version")
    }

    func testSeededGeneratorIsReproducibleAndRestorable() {
        var a = SeededGenerator(seed: 42)
        var b = SeededGenerator(seed: 42)
        let xs = (0..<5).map { _ in a.next() }
        XCTAssertEqual(xs, (0..<5).map { _ in b.next() })
        let saved = a.stateWords
        let next = (0..<3).map { _ in a.next() }
        var restored = SeededGenerator(state: saved)
        XCTAssertEqual(next, (0..<3).map { _ in restored.next() })
        XCTAssertNotEqual(SeededGenerator(seed: 1, stream: "init").stateWords, SeededGenerator(seed: 1, stream: "shuffle").stateWords)
        // Normal draws have the right moments.
        var g = SeededGenerator(seed: 7)
        let z = (0..<200_000).map { _ in g.normal() }
        let mean = z.reduce(0, +) / Double(z.count)
        let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(z.count)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.01)
    }
}
