import Foundation
import Shared

/// Batch-norm sums over the global batch.
///
/// Deterministic mode gathers every rank's per-sample rows (ranks hold consecutive samples, so
/// rank order is sample order) and adds them up in sample order on every rank: the same numbers
/// as one process. Fast mode adds locally and combines the ranks' sums. Either way the caller's
/// `meanwhile` work runs while the rows travel.
public final class MPIStatistics: StatisticsSync {
    let world: Communicator
    let deterministic: Bool
    /// Seconds spent waiting for the collectives to complete (for the slowest rank, mostly), in
    /// total: each batch-norm layer of a training step meets the other ranks twice (the sums of x and
    /// x² forward, the two gradient sums backward). Work run meanwhile is not counted.
    public private(set) var waitSeconds = 0.0
    /// Every rank's local batch (deterministic mode gathers rows of these sizes without first
    /// exchanging them); nil: asked for with a blocking exchange.
    public var rankBatches: [Int]?
    private var gathered: [Double] = []

    public init(world: Communicator, deterministic: Bool) {
        self.world = world
        self.deterministic = deterministic
    }

    public var crossesProcesses: Bool { world.size > 1 }

    public func globalColumnSums(_ rows: UnsafePointer<Double>, localBatch: Int, width: Int, meanwhile: (_ arrived: () -> Bool) -> Void) -> [Double] {
        if world.size == 1 { return LocalStatistics().globalColumnSums(rows, localBatch: localBatch, width: width, meanwhile: meanwhile) }
        if !deterministic && world.size > MPIStatistics.pointToPointRanks {
            var sums = LocalStatistics.columnSums(rows, localBatch: localBatch, width: width)
            sums.withUnsafeMutableBufferPointer { buffer in
                let request = world.iallreduce(buffer, .sum)
                meanwhile { request.isDone }
                timedWait([request])
            }
            return sums
        }
        // Deterministic: every rank's per-sample rows (rank order is sample order), added up in
        // sample order, the numbers one process makes. Fast: every rank's column sums, added in
        // rank order.
        let rowsPerRank: [Int]
        if deterministic {
            rowsPerRank = rankBatches ?? world.allgather([Int64(localBatch)]).map { Int($0[0]) }
            precondition(rowsPerRank[world.rank] == localBatch, "batch-norm rows do not match the batch plan")
        } else {
            rowsPerRank = [Int](repeating: 1, count: world.size)
        }
        let total = rowsPerRank.reduce(0, +)
        if gathered.count < total * width { gathered = [Double](repeating: 0, count: total * width) }
        var offsets = [0]
        for n in rowsPerRank { offsets.append(offsets.last! + n * width) }
        return gathered.withUnsafeMutableBufferPointer { buffer in
            let all = buffer.baseAddress!, own = all + offsets[world.rank]
            if deterministic {
                own.update(from: rows, count: localBatch * width)
            } else {
                own.update(from: LocalStatistics.columnSums(rows, localBatch: localBatch, width: width), count: width)
            }
            exchange(all, offsets: offsets, meanwhile: meanwhile)
            return LocalStatistics.columnSums(all, localBatch: total, width: width)
        }
    }

    /// Up to this many ranks fast mode's sums go point to point (every rank sends them to every
    /// other; deterministic mode's rows always do): a rank's receive then completes when the data
    /// has arrived, without the sender having to come back into MPI, which a multi-round
    /// collective needs, so a rank busy with overlapped work does not hold the others up. Beyond
    /// it fast mode uses MPI's allreduce.
    static let pointToPointRanks = 8

    /// Sends this rank's part of `all` ([offsets[rank], offsets[rank + 1]), already in place) to
    /// every other rank and receives theirs into their parts.
    private func exchange(_ all: UnsafeMutablePointer<Double>, offsets: [Int], meanwhile: (_ arrived: () -> Bool) -> Void) {
        let me = world.rank, stride = MemoryLayout<Double>.stride
        func part(_ r: Int) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(start: all + offsets[r], count: (offsets[r + 1] - offsets[r]) * stride)
        }
        var requests: [Communicator.Request] = []
        for r in 0..<world.size where r != me {
            if part(r).count > 0 { requests.append(world.irecv(part(r), from: r, tag: MPIStatistics.tag)) }
            if part(me).count > 0 { requests.append(world.isend(UnsafeRawBufferPointer(part(me)), to: r, tag: MPIStatistics.tag)) }
        }
        meanwhile { requests.allSatisfy(\.isDone) }
        timedWait(requests)
    }

    /// Message tag of the statistics (messages between two ranks with one tag arrive in order).
    static let tag = 9100

    private func timedWait(_ requests: [Communicator.Request]) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for r in requests { r.wait() }
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }
}

/// Sums the ranks' gradients while the backward pass is still running.
///
/// The backward pass reports each tensor's flat range as soon as its gradient is final
/// (`GradientSink.onReady`); tensors finish mostly from the end of the flat buffer towards its
/// start. Whenever a bucket (~`bucketElements`) of the finished suffix is complete it is sent,
/// from the end down (`GradientBuckets`), so the buckets and their order are the same on every
/// rank whenever each rank's tensors finish:
/// - fast mode: `MPI_Iallreduce` on the bucket;
/// - deterministic mode: every rank sends its tree nodes' share of the bucket to the rank that
///   owns that slice of it; the owner adds the nodes up along the fixed chunk tree (the same
///   additions one process makes), then the summed slices are gathered by everyone.
/// `finish()` waits for what is still in flight. Ranges of frozen tensors are never sent.
public final class GradientExchange<S: Real> {
    let world: Communicator
    let sink: GradientSink<S>
    let deterministic: Bool
    let bucketElements: Int
    let trained: [Range<Int>]
    let total: Int

    /// All ranks' tree nodes: (chunk range, owner rank, index in the owner's node buffers).
    let allNodes: [(range: Range<Int>, rank: Int, index: Int)]
    let chunkCount: Int

    private var buckets: GradientBuckets
    private var pending: [Communicator.Request] = []
    private var detBuckets: [DetBucket] = []
    /// Seconds spent waiting in `finish()` (what the benchmark reports as communication wait).
    public private(set) var waitSeconds = 0.0
    /// Times the exchange's own work during the backward pass (posting buckets, letting MPI copy
    /// and add them), which would otherwise count as whichever layer reported a finished tensor.
    public var timed: (String, () -> Void) -> Void = { _, body in body() }

    final class DetBucket {
        let range: Range<Int>
        /// Staging: every node's values for this rank's slice, and this rank's slice bounds.
        let slice: Range<Int>
        let staging: Buffer<S>
        var requests: [Communicator.Request] = []
        init(range: Range<Int>, slice: Range<Int>, nodes: Int) {
            self.range = range
            self.slice = slice
            staging = Buffer<S>(count: max(1, nodes * slice.count))
        }
    }

    public init(world: Communicator, sink: GradientSink<S>, plans: [BatchPlan], trained: [Range<Int>], bucketElements: Int = 1 << 21) {
        self.world = world
        self.sink = sink
        deterministic = sink.plan.deterministic
        self.bucketElements = bucketElements
        self.trained = trained
        total = sink.nodeBuffers[0].count
        chunkCount = sink.plan.chunkCount
        var nodes: [(Range<Int>, Int, Int)] = []
        for (r, plan) in plans.enumerated() {
            for (i, n) in plan.nodes.enumerated() { nodes.append((n, r, i)) }
        }
        allNodes = nodes.sorted { $0.0.lowerBound < $1.0.lowerBound }
        buckets = GradientBuckets(total: total, bucketElements: bucketElements)
        sink.onReady = { [unowned self] range in self.ready(range) }
    }

    /// Resets for the next step (call before the backward pass).
    public func begin() {
        buckets = GradientBuckets(total: total, bucketElements: bucketElements)
        pending = []
        detBuckets = []
    }

    func ready(_ range: Range<Int>) {
        guard world.size > 1 else { return }
        timed("step: gradient exchange") {
            for bucket in buckets.finished(range) { send(bucket) }
            progress()
        }
    }

    /// Lets MPI progress the transfers already posted.
    private func progress() {
        for r in pending { _ = r.isDone }
        for b in detBuckets { for r in b.requests { _ = r.isDone } }
    }

    private func send(_ bucket: Range<Int>) {
        for r in trained {
            let part = max(r.lowerBound, bucket.lowerBound) ..< min(r.upperBound, bucket.upperBound)
            if part.isEmpty { continue }
            if deterministic { sendDeterministic(part) } else {
                let buf = UnsafeMutableBufferPointer(start: sink.nodeBuffers[0].pointer + part.lowerBound, count: part.count)
                pending.append(world.iallreduce(buf, .sum))
            }
        }
    }

    private func sliceOf(_ range: Range<Int>, rank: Int) -> Range<Int> {
        let n = world.size
        return (range.lowerBound + rank * range.count / n) ..< (range.lowerBound + (rank + 1) * range.count / n)
    }

    private func sendDeterministic(_ range: Range<Int>) {
        let me = world.rank
        let mySlice = sliceOf(range, rank: me)
        let bucket = DetBucket(range: range, slice: mySlice, nodes: allNodes.count)
        let tagBase = 1000
        // Receive every node's share of my slice (my own nodes are copied directly).
        for (k, node) in allNodes.enumerated() {
            let dst = bucket.staging.pointer + k * mySlice.count
            if node.rank == me {
                dst.update(from: sink.nodeBuffers[node.index].pointer + mySlice.lowerBound, count: mySlice.count)
            } else if !mySlice.isEmpty {
                bucket.requests.append(world.irecv(UnsafeMutableRawBufferPointer(start: dst, count: mySlice.count * MemoryLayout<S>.stride),
                                                   from: node.rank, tag: tagBase + k))
            }
        }
        // Send my nodes' shares of every other rank's slice.
        for (k, node) in allNodes.enumerated() where node.rank == me {
            for r in 0..<world.size where r != me {
                let s = sliceOf(range, rank: r)
                if s.isEmpty { continue }
                let src = sink.nodeBuffers[node.index].pointer + s.lowerBound
                bucket.requests.append(world.isend(UnsafeRawBufferPointer(start: src, count: s.count * MemoryLayout<S>.stride),
                                                   to: r, tag: tagBase + k))
            }
        }
        detBuckets.append(bucket)
    }

    /// Waits for every bucket; afterwards `sink.nodeBuffers[0]` holds the global gradient.
    public func finish() {
        guard world.size > 1 else { return }
        let t0 = Date()
        // Anything not yet sent (tensors never reported: nothing left to compute): send it now.
        for bucket in buckets.rest() { send(bucket) }
        for r in pending { r.wait() }
        pending = []
        if deterministic {
            let out = sink.nodeBuffers[0].pointer
            for bucket in detBuckets {
                for r in bucket.requests { r.wait() }
                treeSum(bucket, into: out + bucket.slice.lowerBound)
            }
            // Everyone gets every summed slice.
            for bucket in detBuckets {
                let counts = (0..<world.size).map { sliceOf(bucket.range, rank: $0).count }
                allgatherSlices(out + bucket.range.lowerBound, counts: counts)
            }
            detBuckets = []
        }
        waitSeconds += Date().timeIntervalSince(t0)
    }

    /// value(node) = its owner's buffer if it is one of the ranks' nodes, else value(left) + value(right).
    private func treeSum(_ b: DetBucket, into out: UnsafeMutablePointer<S>) {
        let n = b.slice.count
        if n == 0 { return }
        var index: [Range<Int>: Int] = [:]
        for (k, node) in allNodes.enumerated() { index[node.range] = k }
        // Each internal node gets its own buffer: a shared one per depth would let the right
        // child overwrite the left child's sum.
        var scratch: [Range<Int>: Buffer<S>] = [:]
        func value(_ node: Range<Int>) -> UnsafeMutablePointer<S> {
            if let k = index[node] { return b.staging.pointer + k * n }
            precondition(node.count > 1, "chunk \(node) is owned by no rank")
            let mid = BatchPlan.split(node)
            let left = value(node.lowerBound ..< mid)
            let right = value(mid ..< node.upperBound)
            let dst = Buffer<S>(count: n)
            scratch[node] = dst
            for i in 0..<n { dst.pointer[i] = left[i] + right[i] }
            return dst.pointer
        }
        let root = value(0 ..< chunkCount)
        out.update(from: root, count: n)
    }

    private func allgatherSlices(_ base: UnsafeMutablePointer<S>, counts: [Int]) {
        // Point to point: each rank sends its slice to every other rank.
        var requests: [Communicator.Request] = []
        var offsets = [0]
        for c in counts { offsets.append(offsets.last! + c) }
        let me = world.rank
        for r in 0..<world.size where r != me {
            if counts[r] > 0 {
                requests.append(world.irecv(UnsafeMutableRawBufferPointer(start: base + offsets[r], count: counts[r] * MemoryLayout<S>.stride), from: r, tag: 7000))
            }
            if counts[me] > 0 {
                requests.append(world.isend(UnsafeRawBufferPointer(start: base + offsets[me], count: counts[me] * MemoryLayout<S>.stride), to: r, tag: 7000))
            }
        }
        for q in requests { q.wait() }
    }
}

/// Which buckets of the flat gradient can be sent, given the tensors finished so far.
///
/// Buckets are cut from the end of the buffer down, every `bucketElements` (the last one,
/// at the start, shorter), and handed out in that order once all of a bucket is finished: the
/// same buckets in the same order on every rank, whatever order its tensors finish in.
public struct GradientBuckets {
    public let total: Int
    public let bucketElements: Int
    /// [readyFrom, total) is finished; [sentFrom, total) has been handed out.
    public private(set) var readyFrom: Int
    private var sentFrom: Int
    /// Finished ranges below the finished suffix: upper bound → lower bound.
    private var early: [Int: Int] = [:]

    public init(total: Int, bucketElements: Int) {
        self.total = total
        self.bucketElements = bucketElements
        readyFrom = total
        sentFrom = total
    }

    /// Records `range` as finished; returns the buckets that are now complete, highest first.
    public mutating func finished(_ range: Range<Int>) -> [Range<Int>] {
        if range.upperBound == readyFrom {
            readyFrom = range.lowerBound
            while let lower = early.removeValue(forKey: readyFrom) { readyFrom = lower }
        } else if !range.isEmpty {
            early[range.upperBound] = range.lowerBound
        }
        var out: [Range<Int>] = []
        while sentFrom - readyFrom >= bucketElements || (readyFrom == 0 && sentFrom > 0) {
            let lo = max(readyFrom, sentFrom - bucketElements)
            out.append(lo ..< sentFrom)
            sentFrom = lo
        }
        return out
    }

    /// The buckets not handed out yet, as if everything were finished.
    public mutating func rest() -> [Range<Int>] {
        readyFrom = 0
        early = [:]
        return finished(0 ..< 0)
    }
}

/// Compares a checksum of every rank's parameters; names the ranks that disagree.
public enum ParameterCheck {
    /// Collective. Returns nil when all ranks agree, else a message naming the odd ranks.
    public static func compare<S: Real>(_ params: Parameters<S>, world: Communicator, step: Int) -> String? {
        guard world.size > 1 else { return nil }
        var h = XXHash64.hash(UnsafeRawBufferPointer(start: params.values.pointer, count: params.values.count * MemoryLayout<S>.stride))
        h ^= XXHash64.hash(UnsafeRawBufferPointer(start: params.state.pointer, count: params.state.count * MemoryLayout<S>.stride))
        let all = world.allgather([h]).map { $0[0] }
        let groups = Dictionary(grouping: all.indices, by: { all[$0] })
        guard groups.count > 1 else { return nil }
        // The largest group; on a tie the one holding rank 0 (the rank that writes checkpoints), so
        // the message does not depend on Dictionary's per-process iteration order.
        let majority = groups.max { ($0.value.count, -$0.value.min()!) < ($1.value.count, -$1.value.min()!) }!
        let odd = all.indices.filter { all[$0] != majority.key }
        return "parameters diverged at step \(step): rank(s) \(odd.map(String.init).joined(separator: ", ")) disagree with rank(s) \(majority.value.map(String.init).joined(separator: ", ")) (checksums \(Set(all).map { XXHash64.hex($0) }.sorted().joined(separator: " vs ")))"
    }
}
