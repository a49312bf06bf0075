import Foundation
import Shared

/// The two other systems of the source papers, trained on the same stores as fusion-v1
/// (docs/FAMILIES.md).
public enum FamilyKind: String, Codable, CaseIterable, Sendable {
    /// Undercomplete autoencoder on one feature vector per utterance, with a classifier on its latent code.
    case ae
    /// The same, trained on inputs corrupted with Gaussian noise (denoising autoencoder).
    case dae
    /// ResNet with squeeze-and-excitation blocks trained as an emotion verifier; a classical
    /// classifier on its emotion vectors.
    case resnetSE = "resnet-se"

    public var isAutoencoder: Bool { self != .resnetSE }
}

/// The autoencoders' sizes and loss weights.
public struct AutoencoderSettings: Codable, Hashable, Sendable {
    /// Units of the hidden layer on each side of the latent code (tanh).
    public var hidden = 128
    /// Dimensions of the latent code (linear); smaller than the input (undercomplete).
    public var latent = 16
    /// Hidden units of the classifier on the latent code (tanh); 0: a linear softmax on the code.
    public var classifierHidden = 32
    /// Loss = reconstructionWeight · MSE + classificationWeight · cross-entropy.
    public var reconstructionWeight = 1.0
    public var classificationWeight = 1.0
    /// Standard deviation of the Gaussian corruption (in units of the normalised features), dae only.
    public var noise = 0.3

    public init() {}
}

/// How ResNet-SE is trained as a verifier.
public enum VerifierLoss: String, Codable, CaseIterable, Sendable {
    /// Angular prototypical loss alone.
    case angularPrototypical = "angproto"
    /// Softmax cross-entropy on a linear layer over the emotion vectors plus the angular prototypical loss.
    case softmaxAngularPrototypical = "softmax-angproto"
}

/// ResNet-SE's shape, loss and episodes.
public struct ResNetSESettings: Codable, Hashable, Sendable {
    /// Channel multiplier of the stages' 16, 32, 64, 128 channels.
    public var width = 1.0
    /// Residual blocks per stage (four stages).
    public var blocks = [2, 2, 2, 2]
    /// Squeeze-and-excitation reduction ratio.
    public var reduction = 8
    /// Dimensions of the emotion vector.
    public var embedding = 128
    public var loss = VerifierLoss.angularPrototypical
    /// Emotions per episode (N); 0: every class of the store.
    public var episodeClasses = 0
    /// Utterances per emotion in an episode (M): one query and M − 1 for the prototype.
    public var episodeUtterances = 5
    /// A model is accepted only if its equal error rate on the held-out split is below this.
    public var eerThreshold = 0.5
    public var bnMomentum = 0.9
    public var bnEpsilon = 1e-5

    public init() {}
}

/// Everything that decides a family run. Written to RUN/config.json.
public struct FamilyTrainOptions: Codable, Hashable, Sendable {
    public var family: FamilyKind
    public var features: String
    /// A second store for cross-corpus testing (every file of it is a test file).
    public var testFeatures: String?
    public var out: String
    public var epochs: Int
    /// Utterances per global batch (autoencoders; ResNet-SE's batch is its episodes).
    public var batch = 64
    public var adam = Adam<Float>.Settings(learningRate: 0.001)
    public var seed: UInt64 = 1
    public var split = "random"
    /// ResNet-SE: draw and evaluate every segment instead of only those GDS kept.
    public var allSegments = false
    /// Stop after this many steps in total (tests); nil: run every epoch.
    public var maxSteps: Int?
    public var keepCheckpoints = 2
    /// Abort the job if a step makes no progress for this long (seconds).
    public var watchdogSeconds: Double = 300
    public var autoencoder = AutoencoderSettings()
    public var resnet = ResNetSESettings()
    /// Also evaluate on the test files' audio degraded this way.
    public var degradation: Degradation?
    /// Permutations per feature for the autoencoders' feature importance (0: none).
    public var importanceRepeats = 5

    public init(family: FamilyKind, features: String, out: String, epochs: Int) {
        self.family = family
        self.features = features
        self.out = out
        self.epochs = epochs
    }

    /// Settings a checkpoint must share with the run that resumes it, by name.
    public func trajectoryFields(store: StoreIdentity) -> [(String, String)] {
        var f: [(String, String)] = [
            ("family", family.rawValue), ("classes", store.labels.joined(separator: ",")), ("front end", store.frontEndHash),
            ("store", store.fingerprint), ("learning rate", String(adam.learningRate)), ("adam betas", "\(adam.beta1),\(adam.beta2)"),
            ("adam epsilon", String(adam.epsilon)), ("seed", String(seed)), ("split", split),
        ]
        if family.isAutoencoder {
            let a = autoencoder
            f += [("batch", String(batch)), ("hidden", String(a.hidden)), ("latent", String(a.latent)),
                  ("classifier hidden", String(a.classifierHidden)), ("reconstruction weight", String(a.reconstructionWeight)),
                  ("classification weight", String(a.classificationWeight))]
            if family == .dae { f.append(("noise", String(a.noise))) }
        } else {
            let r = resnet
            f += [("width", String(r.width)), ("blocks", r.blocks.map(String.init).joined(separator: ",")),
                  ("reduction", String(r.reduction)), ("embedding", String(r.embedding)), ("loss", r.loss.rawValue),
                  ("episode", "\(r.episodeClasses)x\(r.episodeUtterances)"), ("segments", allSegments ? "all" : "kept by GDS"),
                  ("batch-norm momentum", String(r.bnMomentum))]
        }
        return f
    }

    public func configHash(store: StoreIdentity) -> String {
        XXHash64.hex(XXHash64.hash(Array(trajectoryFields(store: store).map { "\($0.0)=\($0.1)" }.joined(separator: "\n").utf8)))
    }
}

/// What `ser train --model ae|dae|resnet-se` records in RUN/config.json. `family` tells a reader
/// which kind of run it is (fusion runs have no such field).
public struct FamilyRunConfig: Codable, Sendable {
    public var family: FamilyKind
    public var options: FamilyTrainOptions
    public var labels: [String]
    public var frontEnd: FrontEndConfig
    public var frontEndHash: String
    public var store: StoreIdentity
    public var configHash: String
    public var parameters: Int
    public var ranks: Int
    public var threadsPerRank: Int
    /// The autoencoders' input features, in order (UtteranceFeatures.names).
    public var inputFeatures: [String]?

    public static func load(_ run: RunDirectory) throws -> FamilyRunConfig {
        let data = try readFile(run.config)
        do {
            return try JSONDecoder().decode(FamilyRunConfig.self, from: data)
        } catch {
            throw FileError("\(run.config): not the configuration of a model-family run (\(error)); is \(run.path) a directory written by `ser train --model ae|dae|resnet-se`?")
        }
    }

    /// The family of the run in `path`, or nil when it is not a family run (a fusion run, or no config yet).
    public static func family(ofRun path: String) -> FamilyKind? {
        guard let data = try? readFile(RunDirectory(path).config),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let f = obj["family"] as? String else { return nil }
        return FamilyKind(rawValue: f)
    }
}
