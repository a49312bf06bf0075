import Foundation
import Shared

/// Results of a family run, written to RUN/evaluation.json.
///
/// `files` is the same field as in a fusion run's evaluation (a file-level ClassificationReport on
/// the held-out split), so that reports can compare the systems; the other fields are the
/// families' own.
public struct FamilyEvaluation: Codable, Sendable {
    public var family: FamilyKind
    /// The store and split evaluated ("random" or "speaker").
    public var store: String
    public var split: String
    /// The main classifier on the held-out files: the autoencoder's own classifier, or ResNet-SE's
    /// logistic regression.
    public var files: ClassificationReport
    /// Every classifier evaluated, by name (ResNet-SE: logistic-regression, nearest-centroid).
    public var classifiers: [String: ClassificationReport]
    /// Autoencoders: mean squared reconstruction error of the held-out files (normalised units).
    public var reconstructionMSE: Double?
    /// ResNet-SE: same/different-emotion trials on the held-out files.
    public var verification: Verification?
    /// Train on --features, test on every file of --test-features.
    public var crossCorpus: Condition?
    /// The held-out files again, from degraded audio.
    public var degraded: Condition?
    /// Autoencoders: drop in UA when each input feature (and each feature group) is permuted.
    public var importance: [FeatureImportance]?
    public var groupImportance: [FeatureImportance]?

    /// Another test set evaluated with the same trained model.
    public struct Condition: Codable, Sendable {
        public var name: String
        public var store: String
        public var files: ClassificationReport
        public var classifiers: [String: ClassificationReport]
        public var reconstructionMSE: Double?
        public var verification: Verification?
    }

    public init(family: FamilyKind, store: String, split: String, files: ClassificationReport) {
        self.family = family
        self.store = store
        self.split = split
        self.files = files
        classifiers = [:]
    }

    public var summary: String {
        var s = String(format: "files WA %.4f UA %.4f F1 %.4f", files.weightedAccuracy, files.unweightedAccuracy, files.macroF1)
        if let m = reconstructionMSE { s += String(format: " | reconstruction MSE %.4f", m) }
        if let v = verification { s += String(format: " | EER %.4f (%@)", v.eer, v.accepted ? "accepted" : "rejected") }
        return s
    }
}

/// Equal error rate of same-emotion / different-emotion trials, and the acceptance decision.
public struct Verification: Codable, Sendable {
    public var eer: Double
    /// Cosine score at which false acceptances and false rejections are equal.
    public var scoreThreshold: Double
    public var trials: Int
    public var targetTrials: Int
    /// The model is accepted when eer < eerThreshold.
    public var eerThreshold: Double
    public var accepted: Bool
}

/// Drop in unweighted accuracy when a feature's column is permuted among the test files.
public struct FeatureImportance: Codable, Sendable, Equatable {
    public var feature: String
    /// Mean and standard deviation of the drop over the repeats.
    public var drop: Double
    public var std: Double
}

/// The pieces of a family run that do not depend on the model.
enum FamilyRun {
    /// Shards this rank reads (the same contiguous share as fusion training).
    static func lanes(rank: Int, size: Int, shards: Int) -> Range<Int> {
        (rank * shards / size) ..< ((rank + 1) * shards / size)
    }

    /// Refuses a test store that does not share the training store's front end and classes.
    static func checkCompatible(train: FeatureStore, test: FeatureStore) throws {
        var problems: [String] = []
        if train.manifest.frontEndHash != test.manifest.frontEndHash {
            problems.append("front end: \(train.directory) has \(train.manifest.frontEndHash) (\(train.frontEnd.sampleRate) Hz), \(test.directory) has \(test.manifest.frontEndHash) (\(test.frontEnd.sampleRate) Hz)")
        }
        if train.labels != test.labels {
            problems.append("classes: \(train.directory) has \(train.labels.joined(separator: ",")), \(test.directory) has \(test.labels.joined(separator: ","))")
        }
        if !problems.isEmpty {
            throw TrainingError("--test-features \(test.directory) cannot be scored by a model trained on \(train.directory):\n  "
                + problems.joined(separator: "\n  ") + "\nPreprocess both corpora with the same --preset and --labels.")
        }
    }

    static func splitFiles(_ store: FeatureStore, _ name: String) throws -> (train: [Int], test: [Int]) {
        guard let kind = SplitKind(rawValue: name) else { throw TrainingError("unknown split '\(name)'; use random or speaker") }
        let s = store.split(kind)
        guard !s.train.isEmpty else { throw TrainingError("\(store.directory): the \(name) split has no training files") }
        guard !s.test.isEmpty else { throw TrainingError("\(store.directory): the \(name) split has no held-out files") }
        return s
    }

    /// Writes a checkpoint (rank 0) and prunes old ones.
    static func saveCheckpoint<S: Real>(run: RunDirectory, params: Parameters<S>, adam: Adam<S>, step: Int, epoch: Int,
                                        batchInEpoch: Int, configHash: String, config: String, keep: Int) throws {
        let state = Checkpoint.State(step: step, epoch: epoch, batchInEpoch: batchInEpoch, rng: [], configHash: configHash, config: config)
        let path = try Checkpoint.write(directory: run.checkpoints, params: params, adam: adam, state: state)
        _ = try Checkpoint.read(path)
        Checkpoint.prune(run.checkpoints, keep: keep, validation: [:])
    }

    /// Restores the newest valid checkpoint into `params` and `adam` (rank 0 reads, every rank
    /// gets the bytes). Returns (step, epoch, batch in epoch), or nil without a checkpoint.
    static func resume<S: Real>(run: RunDirectory, params: Parameters<S>, adam: Adam<S>, configHash: String,
                                fields: [(String, String)], world: Communicator, console: Console) throws -> (step: Int, epoch: Int, batch: Int)? {
        var bytes: [UInt8] = []
        var note = ""
        if world.isRoot, let found = Checkpoint.newestValid(run.checkpoints, report: { console.warn($0) }) {
            bytes = Array(try readFile(found.path))
            note = found.path
        }
        bytes = world.broadcast(bytes: bytes)
        let path = String(decoding: world.broadcast(bytes: Array(note.utf8)), as: UTF8.self)
        guard !bytes.isEmpty else { return nil }
        let tensors = try SafeTensors.decode(try Zstd.decompress(Data(bytes), source: path), source: path)
        let (state, _) = try Checkpoint.read(fromDecoded: tensors, source: path)
        if state.configHash != configHash {
            let theirs = (try? JSONSerialization.jsonObject(with: Data(state.config.utf8)) as? [String: String]) ?? [:]
            let diffs = TrainOptions.differences(fields, theirs.map { ($0.key, $0.value) })
            throw TrainingError("\(path) was written by a run with another configuration, so this run cannot continue from it:\n  "
                + (diffs.isEmpty ? "configuration hash \(state.configHash) ≠ \(configHash)" : diffs.joined(separator: "\n  "))
                + "\nStart a new run directory, or resume with the original settings.")
        }
        try Checkpoint.restore(tensors, source: path, into: params, adam: adam)
        adam.step = state.step
        if world.isRoot { console.info("resuming from \(path): step \(state.step), epoch \(state.epoch + 1)") }
        return (state.step, state.epoch, state.batchInEpoch)
    }

    /// Final weights with the run's configuration in the header.
    static func writeWeights<S: Real>(run: RunDirectory, params: Parameters<S>, family: FamilyKind, labels: [String],
                                      frontEndHash: String, step: Int) throws {
        var st = params.export(metadata: ["family": family.rawValue, "labels": labels.joined(separator: ","),
                                          "front_end_hash": frontEndHash, "step": String(step)])
        st.metadata["ser_config"] = (try? String(contentsOfFile: run.config, encoding: .utf8)) ?? ""
        try st.write(path: run.weights)
    }

    /// Sums per-sample loss parts over the ranks: every rank sends its per-sample values and they
    /// are added in rank (= sample) order, so the figure does not depend on the number of ranks.
    static func globalMeans(_ parts: [[Double]], world: Communicator) -> [Double] {
        let width = parts.count
        var rows: [Double] = []
        let n = parts.first?.count ?? 0
        for i in 0..<n { for p in parts { rows.append(p[i]) } }
        var sums = [Double](repeating: 0, count: width)
        var count = 0
        for part in world.allgather(rows) {
            for i in 0..<(part.count / max(1, width)) {
                for k in 0..<width { sums[k] += part[i * width + k] }
                count += 1
            }
        }
        return sums.map { $0 / Double(max(1, count)) }
    }
}

extension FamilyRun {
    /// Collective: `row(file)` (`width` values) for every file of `files`, in that order, on every
    /// rank. Each rank computes the files of its own shards; the rows are then exchanged. An error
    /// on any rank is thrown on every rank (so none is left waiting in a collective).
    static func distributedRows(store: FeatureStore, files: [Int], width: Int, world: Communicator,
                                _ row: (Int) throws -> [Double]) throws -> [[Double]] {
        let lanes = lanes(rank: world.rank, size: world.size, shards: store.shardCount)
        var rows: [Double] = []
        var failure = ""
        for id in files where lanes.contains(store.files[id].shard) {
            do {
                let r = try row(id)
                precondition(r.count == width, "row of \(r.count) values, expected \(width)")
                rows.append(Double(id))
                rows += r
            } catch {
                failure = "\(error)"
                break
            }
        }
        let failures = world.allgatherStrings(failure).filter { !$0.isEmpty }
        if let first = failures.first { throw FileError(first) }
        var byFile: [Int: [Double]] = [:]
        for part in world.allgather(rows) {
            for k in 0..<(part.count / (width + 1)) {
                let r = part[(k * (width + 1)) ..< ((k + 1) * (width + 1))]
                byFile[Int(r.first!)] = Array(r.dropFirst())
            }
        }
        return try files.map { id in
            guard let r = byFile[id] else { throw FileError("\(store.directory): no values computed for file \(id)") }
            return r
        }
    }

    /// Per-column mean and population standard deviation of `rows`.
    static func columnStatistics(_ rows: [[Double]]) -> (mean: [Double], std: [Double]) {
        let d = rows.first?.count ?? 0
        var mean = [Double](repeating: 0, count: d), sq = mean
        for r in rows { for j in 0..<d { mean[j] += r[j] } }
        for j in 0..<d { mean[j] /= Double(max(1, rows.count)) }
        for r in rows { for j in 0..<d { let e = r[j] - mean[j]; sq[j] += e * e } }
        return (mean, sq.map { ($0 / Double(max(1, rows.count))).squareRoot() })
    }
}

/// Runs `body` with OpenBLAS on one thread: LAPACK and BLAS calls whose result must not depend on
/// the thread count (a GEMM with a long inner dimension may be split along it and summed in
/// another order), so that 1 and N ranks write the same files. Used for small matrices only.
func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
    let threads = BLASKernel.threads
    BLASKernel.setThreads(1)
    defer { BLASKernel.setThreads(threads) }
    return try body()
}
