import Foundation
import Shared

/// Trains ResNet-SE as an emotion verifier, then fits classical classifiers on its emotion
/// vectors and evaluates both (docs/FAMILIES.md §2).
///
/// Each step every rank draws its own episode (EpisodeSampler: stream
/// "resnet-se/episode/step<s>/rank<r>" of --seed) from the training files of its own shards,
/// holds those files' candidate segments in memory, and computes its episode's loss. Batch norm
/// normalises with the statistics of all ranks' episodes together (MPIStatistics, fixed order);
/// each rank's gradient is scaled by 1/ranks and the ranks' gradients are summed in a fixed order
/// (GradientExchange), so every rank applies the same Adam update to the mean of the episode
/// losses. An epoch is ⌊training files / (ranks·N·M)⌋ steps (at least 1), about one draw per file.
public final class ResNetSETrainer {
    public let options: FamilyTrainOptions
    let world: Communicator
    let console: Console
    let run: RunDirectory
    public let store: FeatureStore
    let testStore: FeatureStore?
    public let model: ResNetSEModel<Float>
    let adam: Adam<Float>
    let identity: StoreIdentity
    let configHash: String
    let trainFiles: [Int]
    let testFiles: [Int]
    let sampler: EpisodeSampler
    let episodeClasses: Int
    let episodeUtterances: Int
    /// This rank's candidate training segments, in memory: id → offset in `cache`.
    let cacheIndex: [Int: Int]
    let cache: [Float]

    public private(set) var step = 0
    public var onStep: ((Int, Double) -> Void)?
    public private(set) var evaluation: FamilyEvaluation?

    public init(options: FamilyTrainOptions, world: Communicator, console: Console) throws {
        precondition(options.family == .resnetSE)
        self.options = options
        self.world = world
        self.console = console
        run = RunDirectory(options.out)
        store = try FeatureStore.open(options.features)
        testStore = try options.testFeatures.map { try FeatureStore.open($0) }
        if let t = testStore { try FamilyRun.checkCompatible(train: store, test: t) }
        (trainFiles, testFiles) = try FamilyRun.splitFiles(store, options.split)
        let classes = store.labels.count
        var settings = options.resnet
        episodeClasses = settings.episodeClasses == 0 ? classes : settings.episodeClasses
        episodeUtterances = settings.episodeUtterances
        guard episodeClasses >= 2, episodeClasses <= classes else {
            throw TrainingError("--episode-classes must be between 2 and the store's \(classes) classes (got \(settings.episodeClasses))")
        }
        guard episodeUtterances >= 2 else { throw TrainingError("--episode-utterances must be at least 2: one query and a prototype of at least one") }
        settings.episodeClasses = episodeClasses
        model = try ResNetSEModel(frames: store.frontEnd.patchFrames, bands: store.frontEnd.melBands, classes: classes, settings: settings)
        adam = Adam(count: model.layout.trainableCount, settings: options.adam)
        identity = StoreIdentity(store)
        configHash = options.configHash(store: identity)
        guard store.shardCount >= world.size else {
            throw TrainingError("\(options.features) has \(store.shardCount) shards but the job has \(world.size) ranks; each rank draws its episodes from whole shards. Use at most \(store.shardCount) ranks, or preprocess again with --shards \(world.size) or more.")
        }
        let lanes = FamilyRun.lanes(rank: world.rank, size: world.size, shards: store.shardCount)
        var local: [(id: Int, label: Int, segments: [Int])] = []
        for f in trainFiles where lanes.contains(store.files[f].shard) {
            local.append((f, store.files[f].labelIndex, ResNetSETrainer.candidates(store, file: f, all: options.allSegments)))
        }
        sampler = EpisodeSampler(files: local, classCount: classes, classesPerEpisode: episodeClasses, utterancesPerClass: episodeUtterances)
        let problems = world.allgatherStrings(sampler.problem(names: store.labels) ?? "")
        if let hit = problems.enumerated().first(where: { !$0.element.isEmpty }) {
            throw TrainingError(world.size > 1 ? "rank \(hit.offset): " + hit.element : hit.element)
        }
        // The candidate segments of this rank's training files, read once.
        let per = store.valuesPerSegment
        let ids = local.flatMap(\.segments).sorted()
        var index: [Int: Int] = [:]
        var values = [Float](repeating: 0, count: ids.count * per)
        let reader = store.makeReader(cacheBlocks: 2)
        try values.withUnsafeMutableBufferPointer { buf in
            for (k, id) in ids.enumerated() {
                try reader.read(id, into: buf.baseAddress! + k * per)
                index[id] = k * per
            }
        }
        cacheIndex = index
        cache = values
        var rng = SeededGenerator(seed: options.seed, stream: "init")
        model.initialize(using: &rng)
    }

    /// The segments a file contributes: those GDS kept (all with --all-segments, or when GDS kept none).
    static func candidates(_ store: FeatureStore, file: Int, all: Bool) -> [Int] {
        let segs = Array(store.files[file].segments)
        if all { return segs }
        let kept = segs.filter { store.segment($0).kept }
        return kept.isEmpty ? segs : kept
    }

    var configJSON: String { jsonLine(Dictionary(options.trajectoryFields(store: identity), uniquingKeysWith: { a, _ in a })) }

    public var stepsPerEpoch: Int { max(1, trainFiles.count / (world.size * episodeClasses * episodeUtterances)) }

    /// Trains (from the newest checkpoint with `resume`) and evaluates. Returns whether the model
    /// was accepted (its EER below --eer-threshold), on every rank.
    @discardableResult
    public func train(resume: Bool) throws -> Bool {
        if world.isRoot {
            try AtomicFile.makeDirectory(run.checkpoints)
            let cfg = FamilyRunConfig(family: options.family, options: options, labels: store.labels, frontEnd: store.frontEnd,
                                      frontEndHash: store.manifest.frontEndHash, store: identity, configHash: configHash,
                                      parameters: model.layout.trainableCount, ranks: world.size,
                                      threadsPerRank: ComputeThreads.current, inputFeatures: nil)
            try AtomicFile.write(try jsonText(cfg), to: run.config)
        }
        if resume, let r = try FamilyRun.resume(run: run, params: model.params, adam: adam, configHash: configHash,
                                                fields: options.trajectoryFields(store: identity), world: world, console: console) {
            step = r.step
        }
        let n = episodeClasses, m = episodeUtterances, local = n * m, global = local * world.size
        let plans = (0..<world.size).map {
            BatchPlan.distributed(globalBatch: global, rank: $0, ranks: world.size, deterministic: true, chunkCount: world.size)
        }
        let sink = GradientSink(plan: plans[world.rank], primary: model.params.grads)
        let trained = [0 ..< model.layout.trainableCount]
        let exchange = GradientExchange(world: world, sink: sink, plans: plans, trained: trained)
        model.statistics = MPIStatistics(world: world, deterministic: true)
        model.globalBatchOverride = global
        let per = store.valuesPerSegment
        var x = [Float](repeating: 0, count: local * per)
        let perEpoch = stepsPerEpoch
        let total = options.epochs * perEpoch
        let watchdog = Watchdog(world: world, timeout: options.watchdogSeconds, console: console)
        watchdog.start()
        defer { watchdog.stop() }
        if world.isRoot {
            console.info("\(trainFiles.count) training files, episodes of \(n) emotions × \(m) utterances on each of \(world.size) rank(s), \(perEpoch) steps per epoch")
        }
        var sums = [0.0, 0.0, 0.0], count = 0
        var epochStart = Date()
        var progress: Shared.Progress?
        while step < total {
            if progress == nil && world.isRoot {
                progress = Shared.Progress("epoch \(step / perEpoch + 1)/\(options.epochs)", total: perEpoch, unit: "steps", console: console)
                progress?.advance(by: step % perEpoch)
            }
            if let limit = options.maxSteps, step >= limit {
                if world.isRoot {
                    console.info("stopped at step \(step) (--max-steps)")
                    try FamilyRun.saveCheckpoint(run: run, params: model.params, adam: adam, step: step, epoch: step / perEpoch,
                                                 batchInEpoch: step % perEpoch, configHash: configHash, config: configJSON, keep: options.keepCheckpoints)
                }
                break
            }
            let episode = sampler.episode(seed: options.seed, step: step, rank: world.rank)
            x.withUnsafeMutableBufferPointer { xb in
                cache.withUnsafeBufferPointer { c in
                    for (k, id) in episode.segments.enumerated() {
                        (xb.baseAddress! + k * per).update(from: c.baseAddress! + cacheIndex[id]!, count: per)
                    }
                }
            }
            x.withUnsafeBufferPointer { _ = model.forward($0.baseAddress!, batch: local, bn: .batch, updateStatistics: true) }
            let loss = model.episodeLoss(classes: n, utterances: m, labels: episode.labels, ranks: world.size)
            exchange.begin()
            model.backward(sink: sink)
            exchange.finish()
            adam.update(model.params.values, model.params.grads, ranges: trained)
            let means = FamilyRun.globalMeans([[loss.total], [loss.prototypical], [loss.accuracy]], world: world)
            guard means[0].isFinite else {
                throw TrainingError("training stopped at step \(step + 1): the loss is \(means[0]). Lower --learning-rate (now \(options.adam.learningRate)).")
            }
            step += 1
            watchdog.progress(step: step)
            sums[0] += means[0]; sums[1] += means[1]; sums[2] += means[2]; count += 1
            onStep?(step, means[0])
            progress?.advance(extra: String(format: "step %d · loss %.4f · episode accuracy %.3f", step, means[0], means[2]))
            if step % perEpoch == 0 {
                // End of an epoch: verification on the held-out files.
                let vectors = try utteranceVectors(store: store, files: testFiles)
                let seconds = Date().timeIntervalSince(epochStart)
                if world.isRoot {
                    let labels = testFiles.map { store.files[$0].labelIndex }
                    let t = EqualErrorRate.trials(vectors: vectors, labels: labels)
                    let eer = EqualErrorRate.compute(scores: t.scores, same: t.same).eer
                    let c = Double(max(1, count))
                    progress?.finish(String(format: "epoch %d/%d: loss %.4f (prototypical %.4f), episode accuracy %.3f | held-out EER %.4f | %@",
                                            step / perEpoch, options.epochs, sums[0] / c, sums[1] / c, sums[2] / c, eer, formatDuration(seconds)))
                    progress = nil
                    try run.appendMetrics(jsonLine([
                        "epoch": step / perEpoch, "step": step, "train_loss": sums[0] / c, "train_prototypical": sums[1] / c,
                        "train_episode_accuracy": sums[2] / c, "train_seconds": seconds, "val_eer": eer, "ranks": world.size,
                    ]))
                    try FamilyRun.saveCheckpoint(run: run, params: model.params, adam: adam, step: step, epoch: step / perEpoch,
                                                 batchInEpoch: 0, configHash: configHash, config: configJSON, keep: options.keepCheckpoints)
                }
                sums = [0, 0, 0]; count = 0
                epochStart = Date()
            }
        }
        watchdog.stop()
        return try finalEvaluation()
    }

    /// Collective: the utterance vectors of `files` of `store` (every rank gets all): each segment's
    /// emotion vector (moving batch-norm statistics) is L2-normalised, the file's are averaged and
    /// the mean normalised again. The segments are those GDS kept (all with `allSegments`).
    public static func utteranceVectors(model: ResNetSEModel<Float>, store: FeatureStore, files: [Int], allSegments: Bool,
                                        world: Communicator) throws -> [[Double]] {
        let reader = store.makeReader(cacheBlocks: 2)
        let per = store.valuesPerSegment
        return try FamilyRun.distributedRows(store: store, files: files, width: model.embedding, world: world) { id in
            let segs = candidates(store, file: id, all: allSegments)
            var x = [Float](repeating: 0, count: segs.count * per)
            try x.withUnsafeMutableBufferPointer { xb in
                for (k, s) in segs.enumerated() { try reader.read(s, into: xb.baseAddress! + k * per) }
            }
            return x.withUnsafeBufferPointer { utteranceVector(model: model, patches: $0.baseAddress!, count: segs.count) }
        }
    }

    static func utteranceVector(model: ResNetSEModel<Float>, patches: UnsafePointer<Float>, count: Int) -> [Double] {
        let vs = model.embed(patches, count: count)
        var mean = [Double](repeating: 0, count: model.embedding)
        for v in vs { for j in 0..<mean.count { mean[j] += v[j] } }
        return normalized(mean)
    }

    func utteranceVectors(store: FeatureStore, files: [Int]) throws -> [[Double]] {
        try ResNetSETrainer.utteranceVectors(model: model, store: store, files: files, allSegments: options.allSegments, world: world)
    }

    /// Collective: the held-out files' vectors from degraded audio (GDS as the store applied it).
    func degradedVectors(_ deg: Degradation) throws -> [[Double]] {
        let extractor = LogMelExtractor(config: store.frontEnd)
        let fe = store.frontEnd
        let gds = store.manifest.gds
        return try FamilyRun.distributedRows(store: store, files: testFiles, width: model.embedding, world: world) { id in
            let m = try Degradation.logMel(store: store, file: id, degradation: deg, seed: options.seed, extractor: extractor)
            let cut = extractor.patches(logMel: m.values, frames: m.frames)
            guard cut.count > 0 else { throw FileError("\(store.files[id].path): too short for one patch after degradation") }
            var keep = Array(0..<cut.count)
            if gds.enabled && !options.allSegments {
                let sel = GaussianDataSelection.select(cut.values, count: cut.count, length: fe.patchValues, threshold: gds.threshold)
                let kept = keep.filter { sel.kept[$0] }
                if !kept.isEmpty { keep = kept }
            }
            var x = [Float](repeating: 0, count: keep.count * fe.patchValues)
            for (k, p) in keep.enumerated() {
                for i in 0..<fe.patchValues { x[k * fe.patchValues + i] = cut.values[p * fe.patchValues + i] }
            }
            return x.withUnsafeBufferPointer { ResNetSETrainer.utteranceVector(model: model, patches: $0.baseAddress!, count: keep.count) }
        }
    }

    /// Verification (EER) and classification on a set of files, with classifiers fitted on the training vectors.
    func assess(_ vectors: [[Double]], labels: [Int], logistic: LogisticRegression, centroid: NearestCentroid)
        -> (files: ClassificationReport, classifiers: [String: ClassificationReport], verification: Verification) {
        let lr = ClassificationReport(labels: store.labels, truth: labels, predicted: vectors.map(logistic.predict))
        let nc = ClassificationReport(labels: store.labels, truth: labels, predicted: vectors.map(centroid.predict))
        let t = EqualErrorRate.trials(vectors: vectors, labels: labels)
        let e = EqualErrorRate.compute(scores: t.scores, same: t.same)
        let v = Verification(eer: e.eer, scoreThreshold: e.threshold, trials: t.scores.count, targetTrials: e.targets,
                             eerThreshold: options.resnet.eerThreshold, accepted: e.eer < options.resnet.eerThreshold)
        return (lr, ["logistic-regression": lr, "nearest-centroid": nc], v)
    }

    func finalEvaluation() throws -> Bool {
        // The weights first: an evaluation that fails (a moved corpus) loses no training.
        if world.isRoot {
            try FamilyRun.writeWeights(run: run, params: model.params, family: .resnetSE, labels: store.labels,
                                       frontEndHash: store.manifest.frontEndHash, step: step)
        }
        let trainVectors = try utteranceVectors(store: store, files: trainFiles)
        let testVectors = try utteranceVectors(store: store, files: testFiles)
        var crossVectors: [[Double]]?
        if let t = testStore { crossVectors = try utteranceVectors(store: t, files: Array(t.files.indices)) }
        var degraded: [[Double]]?
        if let deg = options.degradation { degraded = try degradedVectors(deg) }
        var accepted: [Int32] = [0]
        if world.isRoot {
            let trainLabels = trainFiles.map { store.files[$0].labelIndex }, testLabels = testFiles.map { store.files[$0].labelIndex }
            let logistic = LogisticRegression.fit(trainVectors, labels: trainLabels, classes: store.labels.count)
            let centroid = NearestCentroid.fit(trainVectors, labels: trainLabels, classes: store.labels.count)
            let main = assess(testVectors, labels: testLabels, logistic: logistic, centroid: centroid)
            var e = FamilyEvaluation(family: .resnetSE, store: store.directory, split: options.split, files: main.files)
            e.classifiers = main.classifiers
            e.verification = main.verification
            if let t = testStore, let v = crossVectors {
                let labels = t.files.map(\.labelIndex)
                var a = assess(v, labels: labels, logistic: logistic, centroid: centroid)
                // Also with the other corpus's vectors moved onto the training vectors' per-dimension
                // mean and spread (no labels used), the usual first step against a corpus shift.
                let own = LogisticRegression.columnStats(v)
                let moved = v.map { x in x.indices.map { (x[$0] - own.mean[$0]) / own.std[$0] * logistic.std[$0] + logistic.mean[$0] } }
                a.classifiers["logistic-regression/own-normalisation"] =
                    ClassificationReport(labels: store.labels, truth: labels, predicted: moved.map(logistic.predict))
                e.crossCorpus = .init(name: "trained on \(store.directory), tested on every file of \(t.directory)", store: t.directory,
                                      files: a.files, classifiers: a.classifiers, reconstructionMSE: nil, verification: a.verification)
            }
            if let deg = options.degradation, let v = degraded {
                let a = assess(v, labels: testLabels, logistic: logistic, centroid: centroid)
                e.degraded = .init(name: deg.name, store: store.directory, files: a.files, classifiers: a.classifiers,
                                   reconstructionMSE: nil, verification: a.verification)
            }
            evaluation = e
            try AtomicFile.write(try jsonText(logistic), to: run.path + "/logistic-regression.json")
            try AtomicFile.write(try jsonText(e), to: run.evaluation)
            accepted[0] = main.verification.accepted ? 1 : 0
        }
        world.broadcast(&accepted)
        return accepted[0] == 1
    }
}
