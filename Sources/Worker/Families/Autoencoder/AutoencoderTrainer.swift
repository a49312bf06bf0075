import Foundation
import Shared

/// Trains an autoencoder (`ae`) or denoising autoencoder (`dae`) with its classifier, on one
/// process or as one rank of many, and evaluates it.
///
/// Data: one feature vector per file (UtteranceFeatures), computed by the ranks for their own
/// shards and exchanged, so every rank holds the whole (small) table. Each epoch visits the
/// training files in a seeded order (stream "ae/order/epoch<e>"), in global batches of --batch
/// (the last incomplete batch is left out). Rank r computes its contiguous part of each batch; the
/// batch is cut into min(16, batch) fixed chunks whose gradients are added along a fixed tree
/// (BatchPlan, GradientSink, GradientExchange), so any number of ranks gives bitwise the same
/// weights as one. A DAE's corruption for global step s is drawn for the whole batch from the
/// stream "dae/noise/step<s>", hence also independent of the number of ranks.
public final class AutoencoderTrainer {
    public let options: FamilyTrainOptions
    let world: Communicator
    let console: Console
    let run: RunDirectory
    public let store: FeatureStore
    let testStore: FeatureStore?
    public let model: AutoencoderModel<Float>
    let adam: Adam<Float>
    let identity: StoreIdentity
    let configHash: String
    public let featureNames: [String]
    let trainFiles: [Int]
    let testFiles: [Int]

    public private(set) var step = 0
    var epoch = 0
    var batchInEpoch = 0
    /// Called after every step with (step, loss).
    public var onStep: ((Int, Double) -> Void)?
    public private(set) var evaluation: FamilyEvaluation?
    /// Per-feature mean and standard deviation of the training files.
    var trainStatistics: (mean: [Double], std: [Double]) = ([], [])

    public init(options: FamilyTrainOptions, world: Communicator, console: Console) throws {
        precondition(options.family.isAutoencoder)
        self.options = options
        self.world = world
        self.console = console
        run = RunDirectory(options.out)
        store = try FeatureStore.open(options.features)
        testStore = try options.testFeatures.map { try FeatureStore.open($0) }
        if let t = testStore { try FamilyRun.checkCompatible(train: store, test: t) }
        (trainFiles, testFiles) = try FamilyRun.splitFiles(store, options.split)
        featureNames = UtteranceFeatures.names(bands: store.frontEnd.melBands)
        model = try AutoencoderModel(inputs: featureNames.count, classes: store.labels.count, settings: options.autoencoder)
        adam = Adam(count: model.layout.trainableCount, settings: options.adam)
        identity = StoreIdentity(store)
        configHash = options.configHash(store: identity)
        guard options.batch >= world.size else {
            throw TrainingError("--batch \(options.batch) is smaller than the number of ranks (\(world.size)); every rank needs a share of each batch")
        }
        var rng = SeededGenerator(seed: options.seed, stream: "init")
        model.initialize(using: &rng)
    }

    var configJSON: String { jsonLine(Dictionary(options.trajectoryFields(store: identity), uniquingKeysWith: { a, _ in a })) }

    /// Trains (continuing from the newest checkpoint with `resume`), then evaluates on the held-out
    /// files; rank 0 writes the run directory.
    public func train(resume: Bool) throws {
        let t0 = Date()
        let trainRows = try UtteranceFeatures.table(store: store, files: trainFiles, world: world)
        let testRows = try UtteranceFeatures.table(store: store, files: testFiles, world: world)
        let trainLabels = trainFiles.map { store.files[$0].labelIndex }
        let testLabels = testFiles.map { store.files[$0].labelIndex }
        trainStatistics = FamilyRun.columnStatistics(trainRows)
        model.setNormalization(mean: trainStatistics.mean, std: trainStatistics.std)
        if world.isRoot {
            console.info(String(format: "%d features for %d training and %d held-out files in %@", featureNames.count,
                                trainRows.count, testRows.count, formatDuration(Date().timeIntervalSince(t0))))
            try AtomicFile.makeDirectory(run.checkpoints)
            let cfg = FamilyRunConfig(family: options.family, options: options, labels: store.labels, frontEnd: store.frontEnd,
                                      frontEndHash: store.manifest.frontEndHash, store: identity, configHash: configHash,
                                      parameters: model.layout.trainableCount, ranks: world.size,
                                      threadsPerRank: ComputeThreads.current, inputFeatures: featureNames)
            try AtomicFile.write(try jsonText(cfg), to: run.config)
        }
        if resume, let r = try FamilyRun.resume(run: run, params: model.params, adam: adam, configHash: configHash,
                                                fields: options.trajectoryFields(store: identity), world: world, console: console) {
            step = r.step
            epoch = r.epoch
            batchInEpoch = r.batch
        }

        let n = trainRows.count, d = model.inputs
        let g = min(options.batch, n)
        guard g >= world.size else { throw TrainingError("\(n) training files cannot be shared by \(world.size) ranks") }
        let batches = n / g
        let plans = (0..<world.size).map {
            BatchPlan.distributed(globalBatch: g, rank: $0, ranks: world.size, deterministic: true, chunkCount: min(16, g))
        }
        let plan = plans[world.rank]
        let sink = GradientSink(plan: plan, primary: model.params.grads)
        let trained = [0 ..< model.layout.trainableCount]
        let exchange = GradientExchange(world: world, sink: sink, plans: plans, trained: trained)
        var x = [Float](repeating: 0, count: plan.localBatch * d)
        var noise = [Float](repeating: 0, count: plan.localBatch * d)
        let watchdog = Watchdog(world: world, timeout: options.watchdogSeconds, console: console)
        watchdog.start()
        defer { watchdog.stop() }

        while epoch < options.epochs {
            var order = Array(0..<n)
            var orng = SeededGenerator(seed: options.seed, stream: "ae/order/epoch\(epoch)")
            order.seededShuffle(using: &orng)
            var sums = [0.0, 0.0], steps = 0
            let epochStart = Date()
            while batchInEpoch < batches {
                if let limit = options.maxSteps, step >= limit { break }
                let first = batchInEpoch * g + plan.localStart
                let mine = Array(order[first ..< first + plan.localBatch])
                for (k, i) in mine.enumerated() { for j in 0..<d { x[k * d + j] = Float(trainRows[i][j]) } }
                if options.family == .dae {
                    // The whole batch's corruption, so that it does not depend on the number of ranks.
                    var nrng = SeededGenerator(seed: options.seed, stream: "dae/noise/step\(step)")
                    let sigma = options.autoencoder.noise
                    for k in 0..<(g * d) {
                        let v = Float(nrng.normal() * sigma)
                        let local = k - plan.localStart * d
                        if local >= 0 && local < plan.localBatch * d { noise[local] = v }
                    }
                }
                x.withUnsafeBufferPointer { xb in
                    noise.withUnsafeBufferPointer { nb in
                        model.forward(xb.baseAddress!, batch: plan.localBatch, noise: options.family == .dae ? nb.baseAddress! : nil)
                    }
                }
                let (rec, cls) = model.loss(labels: mine.map { trainLabels[$0] }, globalBatch: g)
                exchange.begin()
                model.backward(sink: sink)
                exchange.finish()
                adam.update(model.params.values, model.params.grads, ranges: trained)
                let means = FamilyRun.globalMeans([rec, cls], world: world)
                let loss = options.autoencoder.reconstructionWeight * means[0] + options.autoencoder.classificationWeight * means[1]
                guard loss.isFinite else {
                    throw TrainingError("training stopped at step \(step + 1): the loss is \(loss) (reconstruction \(means[0]), classification \(means[1])). Lower --learning-rate (now \(options.adam.learningRate)).")
                }
                step += 1
                batchInEpoch += 1
                watchdog.progress(step: step)
                sums[0] += means[0]; sums[1] += means[1]; steps += 1
                onStep?(step, loss)
            }
            if let limit = options.maxSteps, step >= limit, batchInEpoch < batches {
                if world.isRoot {
                    console.info("stopped at step \(step) (--max-steps)")
                    try FamilyRun.saveCheckpoint(run: run, params: model.params, adam: adam, step: step, epoch: epoch, batchInEpoch: batchInEpoch,
                                                 configHash: configHash, config: configJSON, keep: options.keepCheckpoints)
                }
                break
            }
            epoch += 1
            batchInEpoch = 0
            if world.isRoot {
                let v = score(testRows, labels: testLabels)
                let seconds = Date().timeIntervalSince(epochStart)
                let trainRec = sums[0] / Double(max(1, steps)), trainCls = sums[1] / Double(max(1, steps))
                // Epochs take a fraction of a second: about 20 lines per run (every epoch is in metrics.jsonl).
                if epoch % max(1, options.epochs / 20) == 0 || epoch == options.epochs {
                    console.info(String(format: "epoch %d/%d: loss reconstruction %.4f classification %.4f | held-out UA %.4f WA %.4f MSE %.4f | %@",
                                        epoch, options.epochs, trainRec, trainCls, v.report.unweightedAccuracy, v.report.weightedAccuracy,
                                        v.mse, formatDuration(seconds)))
                }
                try run.appendMetrics(jsonLine([
                    "epoch": epoch, "step": step, "train_reconstruction": trainRec, "train_classification": trainCls,
                    "train_loss": options.autoencoder.reconstructionWeight * trainRec + options.autoencoder.classificationWeight * trainCls,
                    "train_seconds": seconds, "val_reconstruction": v.mse, "val_loss": v.crossEntropy,
                    "val_file_wa": v.report.weightedAccuracy, "val_file_ua": v.report.unweightedAccuracy, "val_file_f1": v.report.macroF1,
                    "ranks": world.size,
                ]))
                try FamilyRun.saveCheckpoint(run: run, params: model.params, adam: adam, step: step, epoch: epoch, batchInEpoch: 0,
                                             configHash: configHash, config: configJSON, keep: options.keepCheckpoints)
            }
        }
        watchdog.stop()
        try finalEvaluation(testRows: testRows, testLabels: testLabels)
    }

    /// What the model does on a set of files: its classifier's report, the mean reconstruction
    /// error and cross-entropy.
    struct Scores {
        var report: ClassificationReport
        var mse: Double
        var crossEntropy: Double
        var predictions: [Int]
    }

    func score(_ rows: [[Double]], labels: [Int]) -> Scores {
        let d = model.inputs, classes = model.classes
        var preds: [Int] = [], mse = 0.0, ce = 0.0
        var start = 0
        while start < rows.count {
            let n = min(256, rows.count - start)
            var x = [Float](repeating: 0, count: n * d)
            for k in 0..<n { for j in 0..<d { x[k * d + j] = Float(rows[start + k][j]) } }
            x.withUnsafeBufferPointer { model.forward($0.baseAddress!, batch: n) }
            let lab = Array(labels[start ..< start + n])
            mse += meanSquaredError(model.reconstruction, model.normalizedInput, batch: n, features: d, globalBatch: 1, dpred: nil).reduce(0, +)
            ce += Kernels.softmaxCrossEntropy(model.logits, labels: lab, classes: classes, globalBatch: 1, dlogits: nil).reduce(0, +)
            preds += model.predictions()
            start += n
        }
        let report = ClassificationReport(labels: store.labels, truth: labels, predicted: preds)
        return Scores(report: report, mse: mse / Double(max(1, rows.count)), crossEntropy: ce / Double(max(1, rows.count)), predictions: preds)
    }

    /// Held-out files, the other corpus, the degraded audio and the feature importance; rank 0
    /// writes evaluation.json, importance.csv/.svg and the final weights.
    func finalEvaluation(testRows: [[Double]], testLabels: [Int]) throws {
        // The weights first: an evaluation that fails (a moved corpus) loses no training.
        if world.isRoot {
            try FamilyRun.writeWeights(run: run, params: model.params, family: options.family, labels: store.labels,
                                       frontEndHash: store.manifest.frontEndHash, step: step)
        }
        // Collective parts next: every rank takes part in computing the other tables.
        var crossRows: [[Double]]?, crossFiles: [Int] = []
        if let t = testStore {
            crossFiles = Array(t.files.indices)
            crossRows = try UtteranceFeatures.table(store: t, files: crossFiles, world: world)
        }
        var degradedRows: [[Double]]?
        if let deg = options.degradation {
            let extractor = LogMelExtractor(config: store.frontEnd)
            let bands = store.frontEnd.melBands
            degradedRows = try FamilyRun.distributedRows(store: store, files: testFiles, width: 4 * bands, world: world) { id in
                let m = try Degradation.logMel(store: store, file: id, degradation: deg, seed: options.seed, extractor: extractor)
                return Array(m.values.prefix(m.audioFrames * bands)).withUnsafeBufferPointer {
                    UtteranceFeatures.compute(logMel: $0, frames: m.audioFrames, bands: bands)
                }
            }
        }
        guard world.isRoot else { return }
        let main = score(testRows, labels: testLabels)
        var e = FamilyEvaluation(family: options.family, store: store.directory, split: options.split, files: main.report)
        e.classifiers = ["latent-classifier": main.report]
        e.reconstructionMSE = main.mse
        if let t = testStore, let rows = crossRows {
            let labels = crossFiles.map { t.files[$0].labelIndex }
            let s = score(rows, labels: labels)
            // Also with the other corpus normalised by its own feature statistics (no labels used),
            // the usual first step against a corpus shift.
            let own = FamilyRun.columnStatistics(rows)
            model.setNormalization(mean: own.mean, std: own.std)
            let o = score(rows, labels: labels)
            model.setNormalization(mean: trainStatistics.mean, std: trainStatistics.std)
            e.crossCorpus = .init(name: "trained on \(store.directory), tested on every file of \(t.directory)", store: t.directory,
                                  files: s.report, classifiers: ["latent-classifier": s.report, "latent-classifier/own-normalisation": o.report],
                                  reconstructionMSE: s.mse, verification: nil)
        }
        if let deg = options.degradation, let rows = degradedRows {
            let s = score(rows, labels: testLabels)
            e.degraded = .init(name: deg.name, store: store.directory, files: s.report, classifiers: ["latent-classifier": s.report],
                               reconstructionMSE: s.mse, verification: nil)
        }
        if options.importanceRepeats > 0 {
            let predict: ([[Double]]) -> [Int] = { self.score($0, labels: testLabels).predictions }
            let bands = store.frontEnd.melBands
            e.importance = PermutationImportance.compute(
                rows: testRows, labels: testLabels, classNames: store.labels,
                columns: featureNames.enumerated().map { ($1, [$0]) }, repeats: options.importanceRepeats, seed: options.seed, predict: predict)
            e.groupImportance = PermutationImportance.compute(
                rows: testRows, labels: testLabels, classNames: store.labels,
                columns: UtteranceFeatures.groups.enumerated().map { k, name in (name, Array((k * bands) ..< ((k + 1) * bands))) },
                repeats: options.importanceRepeats, seed: options.seed, predict: predict)
            try AtomicFile.write(PermutationImportance.csv(e.importance!), to: run.path + "/importance.csv")
            try AtomicFile.write(PermutationImportance.csv(e.groupImportance!), to: run.path + "/importance-groups.csv")
            try AtomicFile.write(PermutationImportance.svg(e.importance!, title: "Permutation importance (\(options.family.rawValue), held-out files)"),
                                 to: run.path + "/importance.svg")
            try AtomicFile.write(PermutationImportance.svg(e.groupImportance!, title: "Permutation importance of the feature groups (\(options.family.rawValue))"),
                                 to: run.path + "/importance-groups.svg")
        }
        evaluation = e
        try AtomicFile.write(try jsonText(e), to: run.evaluation)
    }
}
