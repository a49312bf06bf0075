import Shared
import Worker
import XCTest

final class EpochOrderTests: XCTestCase {
    func lanes(_ sizes: [Int], blockSize: Int = 4) -> [[(id: Int, block: Int)]] {
        var next = 0
        return sizes.map { n in (0..<n).map { i in defer { next += 1 }; return (next, i / blockSize) } }
    }

    func testBatchesTakeEachLaneQuotaAndCoverEveryLaneSegment() {
        let l = lanes([40, 40, 40, 40])
        let order = EpochOrder(laneSegments: l, batch: 32, seed: 7, epoch: 0, windowBlocks: 2)
        XCTAssertEqual(order.batches, 5)
        XCTAssertEqual(order.quota, [8, 8, 8, 8])
        for (s, lane) in order.lanes.enumerated() {
            XCTAssertEqual(Set(lane), Set(l[s].map(\.id)), "lane \(s) uses each of its segments once")
        }
        XCTAssertEqual(Array(order.segments(lane: 2, batch: 1)), Array(order.lanes[2][8..<16]))
        XCTAssertEqual(order.laneOffset(3), 24)
    }

    func testOrderDependsOnSeedAndEpochOnly() {
        let l = lanes([30, 50, 20])
        let a = EpochOrder(laneSegments: l, batch: 25, seed: 1, epoch: 3, windowBlocks: 3)
        let b = EpochOrder(laneSegments: l, batch: 25, seed: 1, epoch: 3, windowBlocks: 3)
        XCTAssertEqual(a.lanes, b.lanes)
        XCTAssertNotEqual(a.lanes, EpochOrder(laneSegments: l, batch: 25, seed: 1, epoch: 4, windowBlocks: 3).lanes)
        XCTAssertNotEqual(a.lanes, EpochOrder(laneSegments: l, batch: 25, seed: 2, epoch: 3, windowBlocks: 3).lanes)
        // Uneven lanes: a short lane starts a second pass instead of starving the batch.
        XCTAssertEqual(a.batches, 4)
        XCTAssertEqual(a.quota, [8, 8, 9])
        XCTAssertEqual(a.lanes[2].count, 36)
        XCTAssertEqual(Set(a.lanes[2]), Set(l[2].map(\.id)))
    }

    func testShuffleWindowBoundsHowFarSegmentsTravel() {
        // With a window of 2 blocks of 4, the first 4 draws come from the first 3 blocks visited.
        let l = lanes([64], blockSize: 4)
        let order = EpochOrder(laneSegments: l, batch: 64, seed: 3, epoch: 0, windowBlocks: 2)
        let blocksOfFirstDraws = Set(order.lanes[0].prefix(4).map { $0 / 4 })
        XCTAssertLessThanOrEqual(blocksOfFirstDraws.count, 3)
        XCTAssertEqual(Set(order.lanes[0]).count, 64)
    }
}
