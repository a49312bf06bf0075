import Foundation
import Shared
import TestSupport
import XCTest

final class CheckpointTests: XCTestCase {
    func model() throws -> (Network<Float>, Adam<Float>) {
        let net = try Network<Float>(config: ModelConfig(architecture: .fusionV1, classes: 4, width: 0.125))
        var rng = SeededGenerator(seed: 5)
        net.params.initialize(using: &rng)
        for i in 0..<net.params.state.count { net.params.state[i] = Float(i % 7) * 0.25 }
        let adam = Adam<Float>(count: net.layout.trainableCount, settings: .init())
        for i in 0..<adam.m.count { adam.m[i] = Float(i % 11) * 1e-3; adam.v[i] = Float(i % 5) * 1e-6 }
        adam.step = 17
        return (net, adam)
    }

    func state(_ step: Int, _ v: Double? = nil) -> Checkpoint.State {
        Checkpoint.State(step: step, epoch: 2, batchInEpoch: 5, rng: [1, 2, 3, 4], configHash: "abc", config: "{}", validation: v)
    }

    func testRoundTripRestoresEverythingBitForBit() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let (net, adam) = try model()
        let path = try Checkpoint.write(directory: dir, params: net.params, adam: adam, state: state(42, 0.75))
        XCTAssertTrue(path.hasSuffix("ckpt-step000000042.safetensors.zst"))
        let (st, tensors) = try Checkpoint.read(path)
        XCTAssertEqual(st, state(42, 0.75))
        let (net2, adam2) = try model()
        net2.params.values.zero(); net2.params.state.zero(); adam2.m.zero(); adam2.v.zero(); adam2.step = 0
        try Checkpoint.restore(tensors, source: path, into: net2.params, adam: adam2)
        XCTAssertEqual(net2.params.values.array, net.params.values.array)
        XCTAssertEqual(net2.params.state.array, net.params.state.array)
        XCTAssertEqual(adam2.m.array, adam.m.array)
        XCTAssertEqual(adam2.v.array, adam.v.array)
        XCTAssertEqual(adam2.step, 17)
        // A plain safetensors reader opens it after `zstd -d`.
        let plain = try SafeTensors.decode(try Zstd.decompress(try readFile(path)))
        XCTAssertNotNil(plain["param/head/logits/kernel"])
        XCTAssertEqual(plain.metadata["format_version"], "1")
    }

    func testTruncatedOrFlippedNewestIsSkippedForThePreviousOne() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let (net, adam) = try model()
        try Checkpoint.write(directory: dir, params: net.params, adam: adam, state: state(10))
        let newest = try Checkpoint.write(directory: dir, params: net.params, adam: adam, state: state(20))
        let bytes = try readFile(newest)
        try AtomicFile.write(bytes.prefix(bytes.count / 2), to: newest)
        var reports: [String] = []
        let found = Checkpoint.newestValid(dir) { reports.append($0) }
        XCTAssertEqual(found?.state.step, 10)
        XCTAssertEqual(reports.count, 1)
        XCTAssertTrue(reports[0].contains("ckpt-step000000020"), reports[0])
        // A flipped byte inside the data is caught too (zstd's checksum or ours).
        var flipped = try readFile(Checkpoint.list(dir)[0])
        flipped[flipped.count / 3] ^= 0x5A
        try AtomicFile.write(flipped, to: Checkpoint.list(dir)[0])
        XCTAssertNil(Checkpoint.newestValid(dir) { _ in })
    }

    func testPruneKeepsTheLastNAndTheBest() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let (net, adam) = try model()
        for s in [1, 2, 3, 4, 5, 6] { try Checkpoint.write(directory: dir, params: net.params, adam: adam, state: state(s)) }
        Checkpoint.prune(dir, keep: 2, validation: [2: 0.9, 4: 0.5, 6: 0.7])
        let kept = Checkpoint.list(dir).map { ($0 as NSString).lastPathComponent }
        XCTAssertEqual(kept, ["ckpt-step000000002.safetensors.zst", "ckpt-step000000005.safetensors.zst", "ckpt-step000000006.safetensors.zst"])
    }
}
