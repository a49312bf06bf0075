import Foundation

/// How one global batch is split between ranks and into determinism chunks.
///
/// A global batch of G samples is cut into C fixed chunks (chunk i holds samples
/// [⌊iG/C⌋, ⌊(i+1)G/C⌋)). Every parameter gradient is computed chunk by chunk and the chunk
/// results are added up along one fixed binary tree over the C chunks. A rank owns a contiguous
/// run of chunks; whatever the number of ranks, every internal node of the tree is computed as
/// `left + right` from the same leaves, so the final gradient is bitwise the same for 1, 2 or 3
/// ranks. In fast mode a rank cuts its share into one chunk per thread (fewer, larger GEMMs)
/// and ranks' sums meet in MPI's allreduce, which may round differently.
public struct BatchPlan: Sendable {
    /// Samples in the global batch.
    public let globalBatch: Int
    /// This rank's samples: [localStart, localStart + localBatch) of the global batch.
    public let localStart: Int
    public let localBatch: Int
    /// This rank's chunks, as sample ranges relative to its first sample.
    public let chunks: [Range<Int>]
    /// Index of `chunks[0]` among all C chunks, and C.
    public let firstChunk: Int
    public let chunkCount: Int
    public let deterministic: Bool

    /// A plan for one process holding the whole batch, in chunks of `chunkSize` samples.
    public static func single(batch: Int, deterministic: Bool, chunkSize: Int = 8) -> BatchPlan {
        distributed(globalBatch: batch, rank: 0, ranks: 1, deterministic: deterministic,
                    chunkCount: (batch + chunkSize - 1) / max(1, chunkSize))
    }

    /// Rank `rank` of `ranks` with C = `chunkCount` chunks (the training data's lanes): chunks are
    /// dealt out in contiguous runs (uneven when C % ranks ≠ 0). Needs ranks ≤ C. In fast mode the
    /// rank's share is cut into `localParts` chunks instead (default: its threads).
    public static func distributed(globalBatch: Int, rank: Int, ranks: Int, deterministic: Bool, chunkCount: Int,
                                   localParts: Int = ComputeThreads.current) -> BatchPlan {
        precondition(ranks <= chunkCount, "more ranks than chunks")
        let c = chunkCount
        func chunkStart(_ i: Int) -> Int { i * globalBatch / c }
        let first = rank * c / ranks, last = (rank + 1) * c / ranks
        let start = chunkStart(first), end = chunkStart(last)
        let n = end - start, parts = max(1, min(localParts, n))
        let chunks: [Range<Int>] = deterministic
            ? (first..<last).map { (chunkStart($0) - start) ..< (chunkStart($0 + 1) - start) }
            : (0..<parts).map { ($0 * n / parts) ..< (($0 + 1) * n / parts) }
        return BatchPlan(globalBatch: globalBatch, localStart: start, localBatch: end - start, chunks: chunks,
                         firstChunk: first, chunkCount: c, deterministic: deterministic, firstChunkRank: rank)
    }

    /// The tree nodes (ranges of global chunk indices) this rank's chunks add up to. The whole
    /// gradient is the tree sum of all ranks' nodes.
    public var nodes: [Range<Int>] {
        guard deterministic else { return [rank ..< rank + 1] }
        return BatchPlan.cover(firstChunk ..< firstChunk + chunks.count, in: 0 ..< chunkCount)
    }

    /// This rank's index (fast mode names its single node by it).
    public var rank: Int { firstChunkRank }
    let firstChunkRank: Int

    /// Split point of a tree node: the largest power of two below its width, so a power-of-two
    /// chunk count gives a perfectly balanced tree.
    public static func split(_ node: Range<Int>) -> Int {
        var p = 1
        while p * 2 < node.count { p *= 2 }
        return node.lowerBound + p
    }

    /// The maximal tree nodes inside `part`, left to right.
    public static func cover(_ part: Range<Int>, in node: Range<Int>) -> [Range<Int>] {
        if part.isEmpty { return [] }
        if part.lowerBound <= node.lowerBound && node.upperBound <= part.upperBound { return [node] }
        if node.count <= 1 || part.upperBound <= node.lowerBound || part.lowerBound >= node.upperBound { return [] }
        let mid = split(node)
        return cover(part, in: node.lowerBound ..< mid) + cover(part, in: mid ..< node.upperBound)
    }
}

/// Combines per-sample batch-norm partial sums across ranks.
public protocol StatisticsSync: AnyObject {
    /// `rows` holds this rank's per-sample rows (localBatch × width, Double). Returns the column
    /// sums over the global batch, identical on every rank. `meanwhile` runs exactly once, while
    /// the sums travel, with a test of whether they have arrived: work that neither reads the
    /// result nor touches `rows`.
    func globalColumnSums(_ rows: UnsafePointer<Double>, localBatch: Int, width: Int, meanwhile: (_ arrived: () -> Bool) -> Void) -> [Double]
    /// True when the sums travel between processes (work given to `meanwhile` then hides waiting).
    var crossesProcesses: Bool { get }
}

extension StatisticsSync {
    public func globalColumnSums(_ rows: UnsafePointer<Double>, localBatch: Int, width: Int) -> [Double] {
        globalColumnSums(rows, localBatch: localBatch, width: width, meanwhile: { _ in })
    }
}

/// One process: sums the rows in sample order.
public final class LocalStatistics: StatisticsSync {
    public init() {}
    public var crossesProcesses: Bool { false }
    public func globalColumnSums(_ rows: UnsafePointer<Double>, localBatch: Int, width: Int, meanwhile: (_ arrived: () -> Bool) -> Void) -> [Double] {
        meanwhile { true }
        return LocalStatistics.columnSums(rows, localBatch: localBatch, width: width)
    }

    /// Column sums of `rows` in sample order.
    public static func columnSums(_ rows: UnsafePointer<Double>, localBatch: Int, width: Int) -> [Double] {
        var out = [Double](repeating: 0, count: width)
        for b in 0..<localBatch { for c in 0..<width { out[c] += rows[b * width + c] } }
        return out
    }
}

/// Where a backward pass puts parameter gradients: chunk by chunk, reduced along the plan's tree.
public final class GradientSink<S: Real> {
    public let plan: BatchPlan
    /// One flat gradient buffer per tree node of this rank (the first is usually `params.grads`).
    public let nodeBuffers: [Buffer<S>]
    private var scratch: Buffer<S>
    /// Called with each parameter's flat range once its gradient is final on this rank
    /// (the distributed trainer starts communicating finished layers from here).
    public var onReady: ((Range<Int>) -> Void)?

    public init(plan: BatchPlan, primary: Buffer<S>) {
        self.plan = plan
        let n = plan.nodes.count
        nodeBuffers = [primary] + (1..<max(1, n)).map { _ in Buffer<S>(count: primary.count) }
        scratch = Buffer<S>(count: 1)
    }

    /// Computes the gradient of the tensor at flat `offset` (`count` elements) with
    /// `compute(samples, worker, out)`, once per chunk (chunks run in parallel; `worker` selects
    /// per-thread scratch), and stores the tree sum(s) in the node buffers.
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func accumulate(offset: Int, count: Int, _ compute: (Range<Int>, Int, UnsafeMutablePointer<S>) -> Void) {
        let chunks = plan.chunks
        let slots = slots(offset: offset, count: count)
        ComputeThreads.parallelChunks(chunks.count) { i, w in compute(chunks[i], w, slots + i * count) }
        combine(slots, offset: offset, count: count)
    }

    /// The same with `compute(samples, out)` called for one chunk after another on this thread, for
    /// callers whose computation shares scratch space between chunks.
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func accumulate(offset: Int, count: Int, serially compute: (Range<Int>, UnsafeMutablePointer<S>) -> Void) {
        let slots = slots(offset: offset, count: count)
        for (i, r) in plan.chunks.enumerated() { compute(r, slots + i * count) }
        combine(slots, offset: offset, count: count)
    }

    /// Where the chunks write: straight into the gradient for a single chunk, else one scratch slot each.
    private func slots(offset: Int, count: Int) -> UnsafeMutablePointer<S> {
        let chunks = plan.chunks.count
        if chunks == 1 { return nodeBuffers[0].pointer + offset }
        if scratch.count < chunks * count { scratch = Buffer<S>(count: chunks * count, zeroed: false) }
        return scratch.pointer
    }

    /// Adds the chunks' slots along the fixed tree into this rank's node buffers, and reports the range ready.
    private func combine(_ slots: UnsafeMutablePointer<S>, offset: Int, count: Int) {
        let chunks = plan.chunks.count
        if chunks > 1 {
            if plan.deterministic {
                for (k, node) in plan.nodes.enumerated() {
                    let local = (node.lowerBound - plan.firstChunk) ..< (node.upperBound - plan.firstChunk)
                    reduce(local, slots: slots, count: count, globalOffset: plan.firstChunk)
                    (nodeBuffers[k].pointer + offset).update(from: slots + local.lowerBound * count, count: count)
                }
            } else {
                reduce(0 ..< chunks, slots: slots, count: count, globalOffset: 0)
                (nodeBuffers[0].pointer + offset).update(from: slots, count: count)
            }
        }
        onReady?(offset ..< offset + count)
    }

    /// Tree-sums slots of `node` into its first slot: value(node) = value(left) + value(right).
    private func reduce(_ node: Range<Int>, slots: UnsafeMutablePointer<S>, count: Int, globalOffset: Int) {
        if node.count <= 1 { return }
        let global = (node.lowerBound + globalOffset) ..< (node.upperBound + globalOffset)
        let mid = BatchPlan.split(global) - globalOffset
        reduce(node.lowerBound ..< mid, slots: slots, count: count, globalOffset: globalOffset)
        reduce(mid ..< node.upperBound, slots: slots, count: count, globalOffset: globalOffset)
        let left = slots + node.lowerBound * count, right = slots + mid * count
        let parts = max(1, min(64, count / 32768))
        ComputeThreads.parallelFor(parts) { p in
            for i in (p * count / parts) ..< ((p + 1) * count / parts) { left[i] = left[i] + right[i] }
        }
    }

    /// Marks a tensor whose gradient is zero this step (frozen or unused) as final.
    public func zero(offset: Int, count: Int) {
        for b in nodeBuffers { (b.pointer + offset).update(repeating: 0, count: count) }
        onReady?(offset ..< offset + count)
    }
}
