import Foundation
import Shared

/// Everything that decides a training run. Written to RUN/config.json; the fields that shape the
/// trajectory are hashed into every checkpoint so that a resume with other settings is refused.
public struct TrainOptions: Codable, Hashable, Sendable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// Fixed-order reductions: N ranks give bitwise the same weights as one.
        case deterministic
        /// MPI's own allreduce and one chunk per rank: faster, equal up to rounding.
        case fast
    }

    public var features: String
    public var out: String
    public var model = ModelConfig()
    public var epochs = 20
    public var batch = 128
    public var adam = Adam<Float>.Settings()
    /// Linear learning-rate warm-up over this many steps (0: the paper's constant rate).
    public var warmupSteps = 0
    public var seed: UInt64 = 1
    public var split: String = "random"
    /// Train on every segment instead of only those Gaussian data selection kept.
    public var allSegments = false
    public var mode: Mode = .deterministic
    /// Arithmetic of the matrix products (nil: fp32). Not part of the trajectory hash: a run
    /// may be resumed in either precision, though only the same one repeats it bit for bit.
    public var precision: MatmulPrecision?
    /// Checkpoint every this many steps (and at every epoch end).
    public var checkpointEvery = 100
    public var keepCheckpoints = 3
    /// Pretrained weights (safetensors) for the branches.
    public var yamnetWeights: String?
    public var vggishWeights: String?
    /// Stop after this many steps in total (benchmarks, tests); nil: run all epochs.
    public var maxSteps: Int?
    /// Compare parameter checksums across ranks every this many steps.
    public var checksumEvery = 50
    /// Abort the job if a step makes no progress for this long (seconds).
    public var watchdogSeconds: Double = 300
    /// Blocks held per lane by the shuffle window.
    public var shuffleWindowBlocks = 8
    /// Fault injection for tests of the divergence check: (rank, step) whose parameters are nudged.
    public var injectDivergence: [Int]?

    public init(features: String, out: String) {
        self.features = features
        self.out = out
    }

    /// Settings a checkpoint must share with the run that resumes it, by name.
    public func trajectoryFields(store: StoreIdentity) -> [(String, String)] {
        [("architecture", model.architecture.rawValue), ("classes", store.labels.joined(separator: ",")),
         ("width", String(model.width)), ("front end", store.frontEndHash), ("store", store.fingerprint),
         ("batch", String(batch)), ("learning rate", String(adam.learningRate)),
         ("adam betas", "\(adam.beta1),\(adam.beta2)"), ("adam epsilon", String(adam.epsilon)), ("warm-up steps", String(warmupSteps)),
         ("batch-norm momentum", String(model.bnMomentum)),
         ("seed", String(seed)), ("split", split), ("segments", allSegments ? "all" : "kept by GDS"),
         ("mode", mode.rawValue), ("freeze YAMNet", String(model.freezeYAMNet)),
         ("YAMNet weights", yamnetWeights.map { ($0 as NSString).lastPathComponent } ?? "none"),
         ("VGGish weights", vggishWeights.map { ($0 as NSString).lastPathComponent } ?? "none")]
    }

    public func configHash(store: StoreIdentity) -> String {
        XXHash64.hex(XXHash64.hash(Array(trajectoryFields(store: store).map { "\($0.0)=\($0.1)" }.joined(separator: "\n").utf8)))
    }

    /// A readable list of what differs between two field lists (for refusing a checkpoint).
    public static func differences(_ a: [(String, String)], _ b: [(String, String)]) -> [String] {
        let db = Dictionary(b, uniquingKeysWith: { x, _ in x })
        return a.compactMap { k, v in
            let other = db[k] ?? "(absent)"
            return other == v ? nil : "\(k): checkpoint has \(other), this run has \(v)"
        }
    }
}

/// What identifies the data a run trains on.
public struct StoreIdentity: Codable, Hashable, Sendable {
    public var labels: [String]
    public var frontEndHash: String
    /// Segment count, shard count and label set: a different store gives a different order.
    public var fingerprint: String

    public init(labels: [String], frontEndHash: String, fingerprint: String) {
        self.labels = labels
        self.frontEndHash = frontEndHash
        self.fingerprint = fingerprint
    }

    public init(_ store: FeatureStore) {
        labels = store.labels
        frontEndHash = store.manifest.frontEndHash
        fingerprint = "\(store.segmentCount) segments in \(store.shardCount) shards"
    }
}
