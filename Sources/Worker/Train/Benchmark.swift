import CBLAS
import Foundation
import Shared

/// Speed figures for fusion-v1's training and inference steps (ser bench train / infer / scaling).
public enum NetworkBenchmark {
    public struct Result: Codable, Sendable {
        public var ranks: Int
        public var threadsPerRank: Int
        public var batch: Int
        public var steps: Int
        public var secondsPerStep: Double
        public var segmentsPerSecond: Double
        public var gflopPerStep: Double
        public var gflopPerSecond: Double
        /// Measured sgemm peak of the whole job (all ranks' threads), for the ratio.
        public var sgemmPeakGflops: Double
        public var communicationWaitFraction: Double
        /// The part of the wait spent in batch-norm statistics (synchronised over the ranks).
        public var statisticsWaitFraction: Double
        public var peakResidentMB: Double
        public var mode: String
        public var kernel: String
        public var breakdown: String?
    }

    /// sgemm GFLOP/s of this rank: one single-threaded 2048³ GEMM per compute thread at the same
    /// time (how the network uses OpenBLAS), the best of a few repetitions.
    public static func sgemmPeak() -> Double {
        let n = 2048, t = ComputeThreads.current
        let bufs = (0..<t).map { _ in (Buffer<Float>(count: n * n), Buffer<Float>(count: n * n), Buffer<Float>(count: n * n)) }
        for (a, b, _) in bufs { for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 } }
        func round() -> Double {
            let t0 = Date()
            ComputeThreads.parallelChunks(t) { i, _ in
                let (a, b, c) = bufs[i]
                Float.gemm(false, false, n, n, n, 1, a.pointer, n, b.pointer, n, 0, c.pointer, n)
            }
            return 2 * Double(n * n * n) * Double(t) / Date().timeIntervalSince(t0) / 1e9
        }
        _ = round()
        return (0..<3).map { _ in round() }.max()!
    }

    /// Peak resident memory of this process in MB.
    public static var peakResidentMB: Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// Trains on random patches for `steps` timed steps after `warmup` steps (collective).
    public static func train(world: Communicator, config: ModelConfig, batch: Int, steps: Int, warmup: Int,
                             deterministic: Bool, chunks: Int, breakdown: Bool) -> Result {
        let net = try! Network<Float>(config: config)
        var rng = SeededGenerator(seed: 1, stream: "bench")
        net.params.initialize(using: &rng)
        let adam = Adam<Float>(count: net.layout.trainableCount, settings: .init(learningRate: 1e-4))
        let runner = StepRunner(net: net, adam: adam, world: world, deterministic: deterministic, chunkCount: chunks)
        let plan = runner.prepare(globalBatch: batch)
        var data = SeededGenerator(seed: UInt64(1000 + world.rank))
        let x = (0..<(plan.localBatch * net.inputSize)).map { _ in Float(data.normal()) - 3 }
        let labels = (0..<plan.localBatch).map { ($0 + plan.localStart) % config.classes }
        for _ in 0..<warmup { x.withUnsafeBufferPointer { _ = runner.forwardBackward($0.baseAddress!, labels: labels) }; runner.update() }
        let profile = Profile()
        if breakdown { net.profile = profile }
        let wait0 = runner.communicationWait, stat0 = runner.statisticsWait
        world.barrier()
        let t0 = Date()
        for _ in 0..<steps { x.withUnsafeBufferPointer { _ = runner.forwardBackward($0.baseAddress!, labels: labels) }; runner.update() }
        world.barrier()
        let dt = Date().timeIntervalSince(t0) / Double(steps)
        var waits = [runner.communicationWait - wait0, runner.statisticsWait - stat0].map { $0 / Double(steps) }
        world.allreduce(&waits, .max)
        let (waited, statWaited) = (waits[0], waits[1])
        let gflop = 3 * Double(net.forwardFlopsPerSample) * Double(batch) / 1e9
        let peak = world.allreduce(sgemmPeak(), .sum)
        let rss = world.allreduce(peakResidentMB, .max)
        return Result(ranks: world.size, threadsPerRank: ComputeThreads.current, batch: batch, steps: steps, secondsPerStep: dt,
                      segmentsPerSecond: Double(batch) / dt, gflopPerStep: gflop, gflopPerSecond: gflop / dt, sgemmPeakGflops: peak,
                      communicationWaitFraction: waited / dt, statisticsWaitFraction: statWaited / dt, peakResidentMB: rss, mode: deterministic ? "deterministic" : "fast",
                      kernel: BLASKernel.current, breakdown: breakdown ? profile.report : nil)
    }

    /// Inference (moving batch-norm statistics, no gradients) on random patches; each rank its own batches.
    public static func infer(world: Communicator, config: ModelConfig, batch: Int, steps: Int, warmup: Int) -> Result {
        let net = try! Network<Float>(config: config)
        var rng = SeededGenerator(seed: 1, stream: "bench")
        net.params.initialize(using: &rng)
        var data = SeededGenerator(seed: UInt64(2000 + world.rank))
        let x = (0..<(batch * net.inputSize)).map { _ in Float(data.normal()) - 3 }
        for _ in 0..<warmup { x.withUnsafeBufferPointer { _ = net.forward($0.baseAddress!, batch: batch, bn: .moving) } }
        world.barrier()
        let t0 = Date()
        for _ in 0..<steps { x.withUnsafeBufferPointer { _ = net.forward($0.baseAddress!, batch: batch, bn: .moving) } }
        world.barrier()
        let dt = Date().timeIntervalSince(t0) / Double(steps)
        let gflop = Double(net.forwardFlopsPerSample) * Double(batch * world.size) / 1e9
        let peak = world.allreduce(sgemmPeak(), .sum)
        let rss = world.allreduce(peakResidentMB, .max)
        return Result(ranks: world.size, threadsPerRank: ComputeThreads.current, batch: batch * world.size, steps: steps, secondsPerStep: dt,
                      segmentsPerSecond: Double(batch * world.size) / dt, gflopPerStep: gflop, gflopPerSecond: gflop / dt,
                      sgemmPeakGflops: peak, communicationWaitFraction: 0, statisticsWaitFraction: 0, peakResidentMB: rss, mode: "inference",
                      kernel: BLASKernel.current, breakdown: nil)
    }
}
