import ArgumentParser
import Foundation
import Shared
import Worker

/// Options shared by the network benchmarks.
struct NetworkBenchOptions: ParsableArguments {
    @Option(help: "Global batch size.")
    var batch: Int = 128

    @Option(help: "Timed steps (after the warm-up steps).")
    var steps: Int = 5

    @Option(help: "Untimed steps first (allocation, caches).")
    var warmup: Int = 2

    @Option(help: "Network: fusion-v1, vggish-only or yamnet-only.")
    var model: String = "fusion-v1"

    @Option(help: "Channel multiplier (1 = the published networks).")
    var width: Double = 1

    @Option(help: "Compute threads per rank (default: the rank's share of the cores).")
    var threads: Int?

    @Flag(help: "Print the result as one JSON object (for ser bench scaling and scripts).")
    var json = false

    @Option(help: "Matrix products in fp32 (OpenBLAS) or bf16 (float32 accumulation; AMX tiles or AVX512-BF16).")
    var precision: String = "fp32"

    func validate() throws {
        if batch < 1 || steps < 1 || warmup < 0 { throw ValidationError("--batch and --steps must be positive, --warmup not negative") }
        if MatmulPrecision(rawValue: precision) == nil { throw ValidationError("--precision must be fp32 or bf16 (got \(precision))") }
        if ModelConfig.Architecture(rawValue: model) == nil { throw ValidationError("unknown --model \(model)") }
    }

    func start() throws -> Communicator { try Runtime.start(threads: threads, precision: MatmulPrecision(rawValue: precision)!) }

    var config: ModelConfig { ModelConfig(architecture: ModelConfig.Architecture(rawValue: model)!, classes: 4, width: width) }

    func print(_ r: NetworkBenchmark.Result, what: String) {
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            Swift.print(String(decoding: try! enc.encode(r), as: UTF8.self))
            return
        }
        Swift.print("""
        \(what): \(model) width \(width), batch \(r.batch), \(r.ranks) rank(s) × \(r.threadsPerRank) thread(s), \(r.mode), \(precision == "bf16" ? "bf16 (\(MatmulPrecision.kernel))" : precision) matrix products, BLAS \(r.kernel)
        machine: \(CPUInfo.modelName), \(CPUInfo.onlineCores) cores
        \(String(format: "%.1f segments/s  (%.3f s per step of %d; %.1f GFLOP per step)", r.segmentsPerSecond, r.secondsPerStep, r.batch, r.gflopPerStep))
        \(String(format: "%.0f GFLOP/s achieved = %.0f %% of the measured \(precision == "bf16" ? "bf16 GEMM" : "sgemm") peak (%.0f GFLOP/s on the same threads)", r.gflopPerSecond, 100 * r.gflopPerSecond / r.sgemmPeakGflops, r.sgemmPeakGflops))
        \(String(format: "peak resident memory %.0f MB per rank", r.peakResidentMB))\(r.ranks > 1 && r.mode != "inference" ? String(format: "; waiting on communication %.1f %% of a step (gradients %.1f %%, batch-norm statistics %.1f %%)", 100 * r.communicationWaitFraction, 100 * (r.communicationWaitFraction - r.statisticsWaitFraction), 100 * r.statisticsWaitFraction) : "")
        """)
        if let b = r.breakdown { Swift.print("time per section (all timed steps):\n" + b) }
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training steps of fusion-v1 on random patches: segments/s, GFLOP/s against the sgemm peak, memory.",
        discussion: "Runs the real data-parallel step (the one `ser train` runs). Under mpirun the global batch is split between the ranks. Reference on this 2-core machine (issue 3): TensorFlow-CPU 2.21 trains at 64–72 segments/s, PyTorch 2.13 at 56–64; target ≥ 80."
    )

    @OptionGroup var common: NetworkBenchOptions

    @Option(help: "fast (ser train's default) or deterministic (see ser train --mode).")
    var mode: String = "fast"

    @Option(help: "Determinism chunks per global batch (the store's shard count in real training).")
    var chunks: Int = 16

    @Flag(help: "Also print the time spent in each section of the passes.")
    var breakdown = false

    func validate() throws {
        if TrainOptions.Mode(rawValue: mode) == nil { throw ValidationError("--mode must be deterministic or fast") }
    }

    func run() throws {
        let world = try common.start()
        let r = NetworkBenchmark.train(world: world, config: common.config, batch: common.batch, steps: common.steps, warmup: common.warmup,
                                       deterministic: mode == "deterministic", chunks: chunks, breakdown: breakdown)
        if world.isRoot { common.print(r, what: "bench train") }
        world.finalize()
    }
}

struct BenchInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Inference of fusion-v1 on random patches: segments/s and GFLOP/s.",
        discussion: "Reference on this 2-core machine (issue 3): TensorFlow-CPU 2.21 infers at ~250–263 segments/s, PyTorch 2.13 at ~172–190; target ≥ 280."
    )

    @OptionGroup var common: NetworkBenchOptions

    func run() throws {
        let world = try common.start()
        let r = NetworkBenchmark.infer(world: world, config: common.config, batch: common.batch, steps: common.steps, warmup: common.warmup)
        if world.isRoot { common.print(r, what: "bench infer") }
        world.finalize()
    }
}
