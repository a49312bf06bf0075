import ArgumentParser
import Foundation
import Shared
import Worker

struct BenchCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Checkpoint size against raw float32, and the time to write and to read one.",
        discussion: """
        Uses the newest checkpoint of --run when given; otherwise trains fusion-v1 for a few steps on \
        random patches (so that the Adam moments hold real values) and checkpoints that. Writing is \
        what ser train does at a checkpoint: encode, zstd, atomic write with fsync; reading is \
        decompress, verify both checksums, decode.
        """
    )

    @Option(name: .customLong("run"), help: "A run directory: measure its newest checkpoint instead of a fresh one.")
    var runDirectory: String?

    @Option(help: "Channel multiplier of the fresh network (1 = fusion-v1 as published).")
    var width: Double = 1

    @Option(help: "Training steps before the fresh checkpoint (batch 16).")
    var steps: Int = 3

    @Option(help: "Timed writes and reads (the best is reported).")
    var repeats: Int = 3

    @Option(help: "Directory for the checkpoints written (default: a temporary one, removed afterwards).")
    var dir: String?

    func validate() throws {
        if repeats < 1 || steps < 0 { throw ValidationError("--repeats must be positive and --steps not negative") }
        if let run = runDirectory, !FileManager.default.fileExists(atPath: run + "/checkpoints") {
            throw ValidationError("--run \(run): no checkpoints directory; give a run directory written by ser train")
        }
    }

    func run() throws {
        let world = Runtime.start(threads: nil)
        defer { world.finalize() }
        let target = dir ?? (NSTemporaryDirectory() + "ser-bench-ckpt-\(getpid())")
        try AtomicFile.makeDirectory(target)
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: target) } }
        let net: Network<Float>, adam: Adam<Float>, state: Checkpoint.State, source: String
        if let run = runDirectory {
            guard let newest = Checkpoint.newestValid(run + "/checkpoints", report: { Console().warn($0) }) else {
                throw ValidationError("--run \(run): no valid checkpoint in \(run)/checkpoints")
            }
            net = try Network<Float>(config: try RunConfig.load(RunDirectory(run)).options.model)
            adam = Adam<Float>(count: net.layout.trainableCount, settings: .init())
            try Checkpoint.restore(newest.tensors, source: newest.path, into: net.params, adam: adam)
            state = newest.state
            source = newest.path
        } else {
            net = try Network<Float>(config: ModelConfig(architecture: .fusionV1, classes: 4, width: width))
            var rng = SeededGenerator(seed: 1, stream: "bench")
            net.params.initialize(using: &rng)
            adam = Adam<Float>(count: net.layout.trainableCount, settings: .init(learningRate: 1e-3))
            let runner = StepRunner(net: net, adam: adam, world: world, deterministic: true, chunkCount: 1)
            let plan = runner.prepare(globalBatch: 16)
            var data = SeededGenerator(seed: 7)
            let x = (0..<(plan.localBatch * net.inputSize)).map { _ in Float(data.normal()) - 3 }
            let labels = (0..<plan.localBatch).map { $0 % 4 }
            for _ in 0..<steps { x.withUnsafeBufferPointer { _ = runner.forwardBackward($0.baseAddress!, labels: labels) }; runner.update() }
            state = Checkpoint.State(step: steps, epoch: 0, batchInEpoch: steps, rng: rng.stateWords, configHash: "bench", config: "{}")
            source = "fusion-v1 width \(width) after \(steps) training steps"
        }
        let raw = 4 * (net.params.values.count + net.params.state.count + 2 * net.layout.trainableCount)
        var writeBest = Double.infinity, readBest = Double.infinity
        var path = "", size = 0
        for _ in 0..<repeats {
            var t0 = Date()
            path = try Checkpoint.write(directory: target, params: net.params, adam: adam, state: state)
            writeBest = min(writeBest, Date().timeIntervalSince(t0))
            size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            t0 = Date()
            _ = try Checkpoint.read(path)
            readBest = min(readBest, Date().timeIntervalSince(t0))
        }
        print("bench checkpoint: \(source); machine \(CPUInfo.modelName), \(CPUInfo.onlineCores) cores; written to \(target)")
        print(String(format: "parameters %d (+ %d batch-norm statistics), Adam moments 2 × %d", net.layout.trainableCount,
                     net.params.state.count, net.layout.trainableCount))
        print(String(format: "size %.1f MB compressed vs %.1f MB raw float32 (%.1f %%)", Double(size) / 1e6, Double(raw) / 1e6,
                     100 * Double(size) / Double(raw)))
        print(String(format: "write (encode, zstd, fsync, rename) %.3f s = %.0f MB/s raw; read (zstd, checksums, decode) %.3f s = %.0f MB/s raw; best of %d",
                     writeBest, Double(raw) / 1e6 / writeBest, readBest, Double(raw) / 1e6 / readBest, repeats))
    }
}
