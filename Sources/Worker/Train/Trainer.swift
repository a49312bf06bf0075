import Foundation
import Shared

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Trains fusion-v1 (or a baseline) on a feature store, on one process or as one rank of many.
///
/// Each step: every rank assembles its part of the global batch from its own shards (see
/// `EpochOrder`), runs forward (batch norm over the global batch) and backward, the gradient is
/// summed across ranks while backward runs (`GradientExchange`), and every rank applies the same
/// Adam update. Rank 0 writes checkpoints, metrics and the final weights.
public final class Trainer {
    public let options: TrainOptions
    let world: Communicator
    let console: Console
    public let store: FeatureStore
    public let net: Network<Float>
    let adam: Adam<Float>
    let run: RunDirectory
    var rng: SeededGenerator
    let identity: StoreIdentity
    let configHash: String

    let trainFiles: [Int]
    let testFiles: [Int]
    /// Training segments per shard (lane), with their block.
    let laneSegments: [[(id: Int, block: Int)]]
    /// Lanes (shards) of this rank.
    let lanes: Range<Int>

    public private(set) var step = 0
    var epoch = 0
    var batchInEpoch = 0
    var validationByStep: [Int: Double] = [:]
    /// Called after every step with (step, loss): tests and the watchdog observe progress here.
    public var onStep: ((Int, Double) -> Void)?
    public private(set) var lastEvaluation: EvaluationResult?
    public var communicationWait: Double { runner?.communicationWait ?? 0 }
    public private(set) var computeSeconds = 0.0
    private var runner: StepRunner?

    public init(options: TrainOptions, world: Communicator, console: Console) throws {
        self.options = options
        self.world = world
        self.console = console
        run = RunDirectory(options.out)
        store = try FeatureStore.open(options.features)
        identity = StoreIdentity(store)
        configHash = options.configHash(store: identity)

        var model = options.model
        model.classes = store.labels.count
        if store.frontEnd.patchFrames != model.frames || store.frontEnd.melBands != model.bands {
            model.frames = store.frontEnd.patchFrames
            model.bands = store.frontEnd.melBands
        }
        net = try Network<Float>(config: model)
        adam = Adam(count: net.layout.trainableCount, settings: Adam<Float>.Settings(
            learningRate: options.adam.learningRate, beta1: options.adam.beta1, beta2: options.adam.beta2, epsilon: options.adam.epsilon))
        rng = SeededGenerator(seed: options.seed, stream: "init")

        guard store.shardCount >= world.size else {
            throw TrainingError("\(options.features) has \(store.shardCount) shards but the job has \(world.size) ranks; each rank trains on whole shards. Use at most \(store.shardCount) ranks, or preprocess again with --shards \(world.size) or more.")
        }
        guard let kind = SplitKind(rawValue: options.split) else {
            throw TrainingError("unknown split '\(options.split)'; use random or speaker")
        }
        let split = store.split(kind)
        trainFiles = split.train
        testFiles = split.test
        let isTrain = Set(trainFiles)
        let blockSize = max(1, store.manifest.options.blockSegments)
        var lanesSegs: [[(id: Int, block: Int)]] = []
        for s in 0..<store.shardCount {
            let range = store.segments(inShard: s)
            var list: [(id: Int, block: Int)] = []
            for id in range {
                let info = store.segment(id)
                if isTrain.contains(info.file) && (options.allSegments || info.kept) {
                    list.append((id, (id - range.lowerBound) / blockSize))
                }
            }
            lanesSegs.append(list)
        }
        laneSegments = lanesSegs
        let total = laneSegments.reduce(0) { $0 + $1.count }
        guard total > 0 else { throw TrainingError("\(options.features): the \(options.split) split has no training segments") }
        lanes = (world.rank * store.shardCount / world.size) ..< ((world.rank + 1) * store.shardCount / world.size)

        net.params.initialize(using: &rng)
        try loadPretrained()
    }

    private func loadPretrained() throws {
        if let path = options.yamnetWeights {
            guard net.config.hasYAMNet else { throw TrainingError("--yamnet-weights given, but \(net.config.architecture.rawValue) has no YAMNet branch") }
            // A YAMNet file (shared/weights/yamnet) names its tensors without our prefix and has the
            // AudioSet classifier, which fusion does not use.
            try net.params.load(try SafeTensors.read(path: path), source: path, prefix: "yamnet/", ignoring: { $0.hasPrefix("logits/") })
        }
        if let path = options.vggishWeights {
            guard net.config.hasVGGish else { throw TrainingError("--vggish-weights given, but \(net.config.architecture.rawValue) has no VGGish branch") }
            try net.params.load(try SafeTensors.read(path: path), source: path, prefix: "vggish/", ignoring: { $0.hasPrefix("fc") })
        }
    }

    // MARK: - Resume

    /// Continues from the newest valid checkpoint in the run directory, if any. Rank 0 reads the
    /// file and broadcasts it, so ranks need no shared file system for resuming.
    public func resume() throws -> Bool {
        var bytes: [UInt8] = []
        var note = ""
        if world.isRoot {
            if let found = Checkpoint.newestValid(run.checkpoints, report: { console.warn($0) }) {
                bytes = Array(try readFile(found.path))
                note = found.path
            }
        }
        bytes = world.broadcast(bytes: bytes)
        let path = String(decoding: world.broadcast(bytes: Array(note.utf8)), as: UTF8.self)
        guard !bytes.isEmpty else { return false }
        let raw = try Zstd.decompress(Data(bytes), source: path)
        let tensors = try SafeTensors.decode(raw, source: path)
        let (state, _) = try Checkpoint.read(fromDecoded: tensors, source: path)
        if state.configHash != configHash {
            let theirs = (try? JSONSerialization.jsonObject(with: Data(state.config.utf8)) as? [String: String]) ?? [:]
            let diffs = TrainOptions.differences(options.trajectoryFields(store: identity), theirs.map { ($0.key, $0.value) })
            throw TrainingError("\(path) was written by a run with another configuration, so this run cannot continue from it:\n  "
                + (diffs.isEmpty ? "configuration hash \(state.configHash) ≠ \(configHash)" : diffs.joined(separator: "\n  "))
                + "\nStart a new run directory, or resume with the original settings.")
        }
        try Checkpoint.restore(tensors, source: path, into: net.params, adam: adam)
        step = state.step
        epoch = state.epoch
        batchInEpoch = state.batchInEpoch
        if state.rng.count == 4 { rng = SeededGenerator(state: state.rng) }
        if world.isRoot { console.notice("resuming from \(path): step \(step), epoch \(epoch + 1), batch \(batchInEpoch)") }
        return true
    }

    // MARK: - Training

    var configJSON: String {
        jsonLine(Dictionary(options.trajectoryFields(store: identity), uniquingKeysWith: { a, _ in a }))
    }

    public func train() throws {
        let det = options.mode == .deterministic
        if world.isRoot {
            try AtomicFile.makeDirectory(run.checkpoints)
            let cfg = RunConfig(options: options, labels: store.labels, frontEnd: store.frontEnd, frontEndHash: store.manifest.frontEndHash,
                                store: identity, configHash: configHash, parameters: net.layout.trainableCount, ranks: world.size,
                                threadsPerRank: ComputeThreads.current)
            try AtomicFile.write(try jsonText(cfg), to: run.config)
        }
        let per = store.valuesPerSegment
        let reader = store.makeReader(cacheBlocks: (options.shuffleWindowBlocks + 2) * max(1, lanes.count))
        var lastCheckpointStep = step
        let watchdog = Watchdog(world: world, timeout: options.watchdogSeconds, console: console)
        watchdog.start()
        defer { watchdog.stop() }

        while epoch < options.epochs {
            let order = EpochOrder(laneSegments: laneSegments, batch: options.batch, seed: options.seed, epoch: epoch,
                                   windowBlocks: options.shuffleWindowBlocks)
            let g = order.globalBatch
            let runner = self.runner ?? StepRunner(net: net, adam: adam, world: world, deterministic: det, chunkCount: store.shardCount)
            self.runner = runner
            let plan = runner.prepare(globalBatch: g)
            var x = [Float](repeating: 0, count: max(1, plan.localBatch) * per)
            let progress = world.isRoot ? Progress("epoch \(epoch + 1)/\(options.epochs)", total: order.batches, unit: "batches", console: console) : nil
            progress?.advance(by: batchInEpoch)
            var lossSum = 0.0, lossCount = 0.0
            let epochStart = Date()
            var epochSegments = 0
            while batchInEpoch < order.batches {
                if let limit = options.maxSteps, step >= limit { break }
                let t0 = Date()
                // This rank's samples: its lanes' quotas, lanes in order.
                var labels: [Int] = []
                labels.reserveCapacity(plan.localBatch)
                try x.withUnsafeMutableBufferPointer { xb in
                    var k = 0
                    for lane in lanes {
                        for id in order.segments(lane: lane, batch: batchInEpoch) {
                            try reader.read(id, into: xb.baseAddress! + k * per)
                            labels.append(store.segment(id).label)
                            k += 1
                        }
                    }
                }
                precondition(labels.count == plan.localBatch, "lane quotas do not match the batch plan")
                let loss = x.withUnsafeBufferPointer { runner.forwardBackward($0.baseAddress!, labels: labels) }
                if !loss.isFinite { try stopOnNonFinite(loss: loss) }
                let warm = options.warmupSteps > 0 ? min(1, Double(step + 1) / Double(options.warmupSteps)) : 1
                runner.update(rateScale: warm)
                step += 1
                batchInEpoch += 1
                if let fault = options.injectDivergence, fault.count == 2, fault[0] == world.rank, fault[1] == step {
                    net.params.values[0] += 1e-3
                }
                watchdog.progress(step: step)
                lossSum += loss * Double(g)
                lossCount += Double(g)
                epochSegments += g
                computeSeconds += Date().timeIntervalSince(t0)
                if options.checksumEvery > 0 && step % options.checksumEvery == 0,
                   let problem = ParameterCheck.compare(net.params, world: world, step: step) {
                    world.abort(problem + ". Restart from the last checkpoint with `ser train --resume`.")
                }
                let rate = Double(epochSegments) / max(1e-9, Date().timeIntervalSince(epochStart))
                progress?.advance(extra: String(format: "step %d · loss %.4f · %.1f seg/s", step, loss, rate))
                onStep?(step, loss)
                if options.checkpointEvery > 0 && step % options.checkpointEvery == 0 && batchInEpoch < order.batches {
                    try saveCheckpoint(validation: nil)
                    lastCheckpointStep = step
                }
            }
            if let limit = options.maxSteps, step >= limit, batchInEpoch < order.batches {
                progress?.finish("stopped at step \(step) (--max-steps)")
                if step != lastCheckpointStep { try saveCheckpoint(validation: nil) }
                break
            }
            let epochSeconds = Date().timeIntervalSince(epochStart)
            progress?.finish(String(format: "epoch %d/%d: loss %.4f, %.1f segments/s, %@", epoch + 1, options.epochs,
                                    lossSum / max(1, lossCount), Double(epochSegments) / max(1e-9, epochSeconds), formatDuration(epochSeconds)))
            // Evaluate on the held-out files, spread over the ranks (each its own shards' files).
            let result = try evaluate(onBatch: { watchdog.progress(step: self.step) })
            // Largest rank's peak, so a user sizing nodes sees the worst case (collective).
            let peakRSS = world.allreduce(NetworkBenchmark.peakResidentMB, .max)
            epoch += 1
            batchInEpoch = 0
            if world.isRoot, let result {
                console.info("  validation: " + result.summary)
                validationByStep[step] = result.files.weightedAccuracy
                try run.appendMetrics(jsonLine([
                    "epoch": epoch, "step": step, "train_loss": lossSum / max(1, lossCount),
                    "train_seconds": epochSeconds, "train_segments": epochSegments, "segments_per_second": Double(epochSegments) / max(1e-9, epochSeconds),
                    "val_loss": result.loss,
                    "val_segment_wa": result.segments.weightedAccuracy, "val_segment_ua": result.segments.unweightedAccuracy,
                    "val_file_wa": result.files.weightedAccuracy, "val_file_ua": result.files.unweightedAccuracy,
                    "val_file_f1": result.files.macroF1, "ranks": world.size, "peak_rss_mb": peakRSS,
                ]))
            }
            try saveCheckpoint(validation: result?.files.weightedAccuracy)
            watchdog.progress(step: step)
            lastCheckpointStep = step
        }
        let peakRSS = world.allreduce(NetworkBenchmark.peakResidentMB, .max)
        if world.isRoot {
            console.info(String(format: "peak resident memory %.0f MB (largest of %d rank(s))", peakRSS, world.size))
            var st = net.params.export(metadata: ["ser_config": (try? jsonText(RunConfig.load(run))) ?? "", "labels": store.labels.joined(separator: ","),
                                                  "front_end_hash": store.manifest.frontEndHash, "step": String(step)])
            st.metadata["architecture"] = net.config.architecture.rawValue
            try st.write(path: run.weights)
            if let last = lastEvaluation { try AtomicFile.write(try jsonText(last), to: run.evaluation) }
        }
    }

    /// Distributed evaluation on the test split; rank 0 gets the result.
    public func evaluate(onBatch: (() -> Void)? = nil) throws -> EvaluationResult? {
        let owned = Set(lanes)
        let local = testFiles.filter { owned.contains(store.files[$0].shard) }
        let result = try Evaluator.run(net, store: store, localFiles: local, useAll: options.allSegments, world: world, onBatch: onBatch)
        if world.isRoot { lastEvaluation = result }
        return result
    }

    private func saveCheckpoint(validation: Double?) throws {
        guard world.isRoot else { return }
        let state = Checkpoint.State(step: step, epoch: epoch, batchInEpoch: batchInEpoch, rng: rng.stateWords,
                                     configHash: configHash, config: configJSON, validation: validation)
        let path = try Checkpoint.write(directory: run.checkpoints, params: net.params, adam: adam, state: state)
        // Only a checkpoint that reads back counts; older ones are pruned after that.
        _ = try Checkpoint.read(path)
        if let v = validation { validationByStep[step] = v }
        Checkpoint.prune(run.checkpoints, keep: options.keepCheckpoints, validation: validationByStep)
    }

    /// Stops the job at a non-finite loss, naming the step and the first layer where it appeared,
    /// and writes the last good weights (the current ones if finite, else those before the last update).
    private func stopOnNonFinite(loss: Double) throws {
        let badParameter = net.firstNonFiniteParameter()
        let where_ = badParameter.map { "the parameter \($0) (the previous update overflowed)" }
            ?? net.firstNonFiniteActivation().map { "the output of \($0)" } ?? "the loss only"
        let places = world.allgatherStrings(where_)
        let first = places.enumerated().first { !$0.element.hasSuffix("loss only") } ?? (0, where_)
        let path = run.path + "/weights-last-good.safetensors"
        var goodStep = step
        if world.isRoot {
            if badParameter != nil, let previous = runner?.previous {
                net.params.values.pointer.update(from: previous.values.pointer, count: previous.values.count)
                net.params.state.pointer.update(from: previous.state.pointer, count: previous.state.count)
                goodStep = step - 1
            }
            if net.firstNonFiniteParameter() == nil {
                try net.params.export(metadata: ["step": String(goodStep)]).write(path: path)
            }
        }
        let saved = FileManager.default.fileExists(atPath: path) ? "\(path) (after step \(goodStep))" : "the last checkpoint in \(run.checkpoints)"
        throw TrainingError("training stopped at step \(step + 1): the loss is \(loss); non-finite values first appear in \(first.element) (rank \(first.offset)). The last good weights are in \(saved). Lower --learning-rate (now \(options.adam.learningRate)) or check the input features.")
    }
}
