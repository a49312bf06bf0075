import Shared
import XCTest

/// The chunk tree that makes gradients independent of the number of ranks.
final class BatchPlanTests: XCTestCase {
    func testRanksTakeContiguousUnevenRunsOfChunks() {
        let plans = (0..<3).map { BatchPlan.distributed(globalBatch: 128, rank: $0, ranks: 3, deterministic: true, chunkCount: 16) }
        XCTAssertEqual(plans.map(\.localBatch), [40, 40, 48])
        XCTAssertEqual(plans.map(\.localStart), [0, 40, 80])
        XCTAssertEqual(plans.map(\.chunks.count), [5, 5, 6])
        XCTAssertEqual(plans.flatMap(\.chunks).map(\.count), [Int](repeating: 8, count: 16))
        // Fast mode: one chunk per rank.
        XCTAssertEqual(BatchPlan.distributed(globalBatch: 128, rank: 1, ranks: 3, deterministic: false, chunkCount: 16).chunks, [0 ..< 40])
    }

    func testCoverSplitsARankRunIntoMaximalTreeNodes() {
        // 16 chunks: the tree splits at 8, then 4, 2, 1.
        XCTAssertEqual(BatchPlan.cover(0 ..< 16, in: 0 ..< 16), [0 ..< 16])
        XCTAssertEqual(BatchPlan.cover(0 ..< 6, in: 0 ..< 16), [0 ..< 4, 4 ..< 6])
        XCTAssertEqual(BatchPlan.cover(6 ..< 11, in: 0 ..< 16), [6 ..< 8, 8 ..< 10, 10 ..< 11])
        XCTAssertEqual(BatchPlan.cover(11 ..< 16, in: 0 ..< 16), [11 ..< 12, 12 ..< 16])
        // Non-power-of-two chunk counts split at the largest power of two below the width.
        XCTAssertEqual(BatchPlan.split(0 ..< 6), 4)
        XCTAssertEqual(BatchPlan.cover(3 ..< 6, in: 0 ..< 6), [3 ..< 4, 4 ..< 6])
    }

    /// A gradient assembled from three ranks' tree nodes equals the one-rank tree sum bit for
    /// bit, while a plain left-to-right sum of the same numbers does not.
    func testNodeSumsReproduceTheSingleRankTreeExactly() {
        var rng = SeededGenerator(seed: 9)
        let chunks = (0..<16).map { _ in Float(rng.normal() * pow(10, Double(rng.below(8)))) }
        func tree(_ node: Range<Int>, _ value: (Range<Int>) -> Float?) -> Float {
            if let v = value(node) { return v }
            let mid = BatchPlan.split(node)
            return tree(node.lowerBound ..< mid, value) + tree(mid ..< node.upperBound, value)
        }
        let single = tree(0 ..< 16) { $0.count == 1 ? chunks[$0.lowerBound] : nil }
        var nodes: [Range<Int>: Float] = [:]
        for r in 0..<3 {
            let plan = BatchPlan.distributed(globalBatch: 128, rank: r, ranks: 3, deterministic: true, chunkCount: 16)
            for n in plan.nodes { nodes[n] = tree(n) { $0.count == 1 ? chunks[$0.lowerBound] : nil } }
        }
        XCTAssertEqual(tree(0 ..< 16) { nodes[$0] }.bitPattern, single.bitPattern)
        XCTAssertNotEqual(chunks.reduce(0, +).bitPattern, single.bitPattern, "the test data should be sensitive to summation order")
    }
}
