import Foundation
import Shared

/// Which training segments form each global batch of an epoch.
///
/// Every store shard is a *lane*. A global batch of G samples takes q_s = ⌊G(s+1)/S⌋ − ⌊Gs/S⌋
/// consecutive samples from each lane s, lanes in order, so a rank that owns a run of shards
/// computes a contiguous part of every batch from its own shards only, and the batches do not
/// depend on the number of ranks. Each lane's order is shuffled at two levels, as streaming data
/// loaders do: the lane's blocks (the store's compression units) in a seeded order, then the
/// segments through a shuffle window of `windowBlocks` blocks. A rank therefore decompresses each
/// block about once per epoch and holds only the window in memory. A lane that runs out before
/// the epoch ends starts another shuffled pass. An epoch has ⌊(training segments)/G⌋ batches.
public struct EpochOrder: Sendable {
    /// Segment ids per lane, `batches × quota[s]` long.
    public let lanes: [[Int]]
    public let quota: [Int]
    public let batches: Int
    public let globalBatch: Int

    /// - `laneSegments[s]`: the training segments of shard s in store order, with their block.
    public init(laneSegments: [[(id: Int, block: Int)]], batch: Int, seed: UInt64, epoch: Int, windowBlocks: Int) {
        let s = laneSegments.count
        let total = laneSegments.reduce(0) { $0 + $1.count }
        let g = min(batch, total)
        globalBatch = g
        batches = g == 0 ? 0 : total / g
        let quota = (0..<s).map { (g * ($0 + 1)) / s - (g * $0) / s }
        self.quota = quota
        var lanes: [[Int]] = []
        for (lane, segments) in laneSegments.enumerated() {
            let need = batches * quota[lane]
            var order: [Int] = []
            var pass = 0
            while order.count < need && !segments.isEmpty {
                var rng = SeededGenerator(seed: seed, stream: "order/epoch\(epoch)/lane\(lane)/pass\(pass)")
                order += EpochOrder.windowShuffle(segments, windowBlocks: windowBlocks, rng: &rng)
                pass += 1
            }
            lanes.append(Array(order.prefix(need)))
        }
        self.lanes = lanes
    }

    /// Block order shuffled, then segments drawn at random from a window of blocks.
    static func windowShuffle(_ segments: [(id: Int, block: Int)], windowBlocks: Int, rng: inout SeededGenerator) -> [Int] {
        var blocks: [Int: [Int]] = [:]
        var blockOrder: [Int] = []
        for s in segments {
            if blocks[s.block] == nil { blockOrder.append(s.block) }
            blocks[s.block, default: []].append(s.id)
        }
        blockOrder.seededShuffle(using: &rng)
        // The window is refilled, block by block, whenever it holds fewer segments than
        // `windowBlocks` average blocks.
        let target = windowBlocks * max(1, segments.count / max(1, blockOrder.count))
        var out: [Int] = []
        out.reserveCapacity(segments.count)
        var window: [Int] = []
        var next = 0
        while next < blockOrder.count || !window.isEmpty {
            while window.count < target && next < blockOrder.count {
                window += blocks[blockOrder[next]]!
                next += 1
            }
            let i = rng.below(window.count)
            out.append(window[i])
            window.swapAt(i, window.count - 1)
            window.removeLast()
        }
        return out
    }

    /// The global sample offset of lane s within each batch.
    public func laneOffset(_ s: Int) -> Int { quota[..<s].reduce(0, +) }

    /// Segment ids of lane s for batch b.
    public func segments(lane s: Int, batch b: Int) -> ArraySlice<Int> {
        lanes[s][(b * quota[s]) ..< ((b + 1) * quota[s])]
    }
}
