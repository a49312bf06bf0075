import Foundation
import Shared

/// One data-parallel training step, shared by `ser train` and `ser bench train`.
///
/// forward over this rank's part of the global batch (batch norm over the global batch) →
/// backward, with the gradient exchanged across ranks while it runs → the global loss →
/// the same Adam update on every rank.
public final class StepRunner {
    public let net: Network<Float>
    public let adam: Adam<Float>
    let world: Communicator
    public let deterministic: Bool
    /// Determinism chunks per global batch (the store's shards: one per lane).
    public let chunkCount: Int
    public private(set) var plan: BatchPlan
    private var sink: GradientSink<Float>?
    private var exchange: GradientExchange<Float>?
    private var dlogits: [Float] = []
    /// Parameters and batch-norm state before the last update (the last good weights if an
    /// update overflows). Adam writes the old parameters as it updates them.
    public private(set) var previous: (values: Buffer<Float>, state: Buffer<Float>)?
    /// Seconds spent waiting for gradient communication after the backward pass, in total.
    public private(set) var waitSeconds = 0.0
    let statistics: MPIStatistics

    public init(net: Network<Float>, adam: Adam<Float>, world: Communicator, deterministic: Bool, chunkCount: Int) {
        self.net = net
        self.adam = adam
        self.world = world
        self.deterministic = deterministic
        self.chunkCount = chunkCount
        plan = BatchPlan.distributed(globalBatch: chunkCount, rank: world.rank, ranks: world.size, deterministic: deterministic, chunkCount: chunkCount)
        statistics = MPIStatistics(world: world, deterministic: deterministic)
        net.statistics = statistics
    }

    /// Plans global batches of `globalBatch` samples; returns this rank's part.
    @discardableResult
    public func prepare(globalBatch: Int) -> BatchPlan {
        if sink != nil && plan.globalBatch == globalBatch { return plan }
        if let exchange { waitSeconds += exchange.waitSeconds }
        let plans = (0..<world.size).map {
            BatchPlan.distributed(globalBatch: globalBatch, rank: $0, ranks: world.size, deterministic: deterministic, chunkCount: chunkCount)
        }
        plan = plans[world.rank]
        net.globalBatchOverride = globalBatch
        // Deterministic mode fixes every GEMM's shape by the plan's chunks; fast mode's one chunk
        // per thread is what the network picks itself, and leaves it free to cut chunks for overlap.
        net.chunkPlan = deterministic ? plan.chunks : nil
        statistics.rankBatches = plans.map(\.localBatch)
        let s = GradientSink(plan: plan, primary: net.params.grads)
        sink = s
        exchange = GradientExchange(world: world, sink: s, plans: plans, trained: net.trainedRanges)
        exchange!.timed = { [unowned net] name, body in net.timed(name, body) }
        dlogits = [Float](repeating: 0, count: max(1, plan.localBatch) * net.config.classes)
        return plan
    }

    /// Forward and backward on this rank's `plan.localBatch` samples; the gradient is summed over
    /// all ranks when it returns. Returns the global mean loss (non-finite if anything overflowed).
    public func forwardBackward(_ x: UnsafePointer<Float>, labels: [Int]) -> Double {
        precondition(labels.count == plan.localBatch, "labels do not match the batch plan")
        let classes = net.config.classes
        let logits = net.forward(x, batch: plan.localBatch, bn: .batch, updateStatistics: true)
        let losses = dlogits.withUnsafeMutableBufferPointer {
            SoftmaxCrossEntropy.compute(logits, labels: labels, classes: classes, globalBatch: plan.globalBatch, dlogits: $0.baseAddress!)
        }
        exchange!.begin()
        dlogits.withUnsafeBufferPointer { _ = net.backward($0.baseAddress!, sink: sink) }
        return net.timed("step: gradient finish, loss") {
            exchange!.finish()
            var total = [losses.reduce(0, +), Double(losses.count)]
            world.allreduce(&total, .sum)
            return total[0] / max(1, total[1])
        }
    }

    /// The Adam update (learning rate scaled by `rateScale`, e.g. during warm-up).
    public func update(rateScale: Double = 1) {
        // Under `--breakdown` the step's own work is a section of the network's profile too.
        net.timed("step: Adam update") { updateParameters(rateScale: rateScale) }
    }

    private func updateParameters(rateScale: Double) {
        if previous == nil {
            // Frozen parameters never change: copied once, then Adam keeps the trained ones.
            previous = (Buffer(count: net.params.values.count), Buffer(count: net.params.state.count))
            previous!.values.pointer.update(from: net.params.values.pointer, count: net.params.values.count)
        }
        previous!.state.pointer.update(from: net.params.state.pointer, count: net.params.state.count)
        adam.update(net.params.values, net.params.grads, ranges: net.trainedRanges, rateScale: rateScale, previous: previous!.values.pointer)
    }

    /// Communication wait so far, including the current plan's.
    public var communicationWait: Double { waitSeconds + (exchange?.waitSeconds ?? 0) + statistics.waitSeconds }
    /// The part of `communicationWait` spent on batch-norm statistics.
    public var statisticsWait: Double { statistics.waitSeconds }
}
