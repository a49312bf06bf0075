import Foundation
import Shared

/// A finished family run loaded back: its configuration and the part of the model that maps an
/// utterance to a vector (the autoencoder's latent code, or ResNet-SE's emotion vector).
public final class FamilyEncoder {
    public let run: RunDirectory
    public let config: FamilyRunConfig
    let autoencoder: AutoencoderModel<Float>?
    let resnet: ResNetSEModel<Float>?

    public static func load(_ path: String) throws -> FamilyEncoder {
        let run = RunDirectory(path)
        guard FileManager.default.fileExists(atPath: run.config) else {
            throw FileError("\(run.config): not found; is \(path) a run directory written by `ser train --model ae|dae|resnet-se`?")
        }
        guard FamilyRunConfig.family(ofRun: path) != nil else {
            throw FileError("\(path) is not a model-family run (its config.json has no \"family\" field); `ser embed` takes runs of `ser train --model ae`, `dae` or `resnet-se`")
        }
        let config = try FamilyRunConfig.load(run)
        guard FileManager.default.fileExists(atPath: run.weights) else {
            throw FileError("\(run.weights): no final weights; the run has not finished (finish it with `ser train --resume \(path)`)")
        }
        let weights = try SafeTensors.read(path: run.weights)
        let classes = config.labels.count
        if config.family.isAutoencoder {
            let inputs = config.inputFeatures?.count ?? 4 * config.frontEnd.melBands
            let m = try AutoencoderModel<Float>(inputs: inputs, classes: classes, settings: config.options.autoencoder)
            try m.params.load(weights, source: run.weights)
            return FamilyEncoder(run: run, config: config, autoencoder: m, resnet: nil)
        }
        var settings = config.options.resnet
        if settings.episodeClasses == 0 { settings.episodeClasses = classes }
        let m = try ResNetSEModel<Float>(frames: config.frontEnd.patchFrames, bands: config.frontEnd.melBands, classes: classes, settings: settings)
        try m.params.load(weights, source: run.weights)
        return FamilyEncoder(run: run, config: config, autoencoder: nil, resnet: m)
    }

    init(run: RunDirectory, config: FamilyRunConfig, autoencoder: AutoencoderModel<Float>?, resnet: ResNetSEModel<Float>?) {
        self.run = run
        self.config = config
        self.autoencoder = autoencoder
        self.resnet = resnet
    }

    public var family: FamilyKind { config.family }
    public var dimension: Int { autoencoder?.latent ?? resnet!.embedding }
    public var vectorName: String { autoencoder != nil ? "latent code" : "emotion vector" }

    /// Refuses a store with another front end or class set than the run's.
    public func checkCompatible(with store: FeatureStore) throws {
        var problems: [String] = []
        if store.manifest.frontEndHash != config.frontEndHash {
            problems.append("front end: the run used \(config.frontEndHash) (\(config.frontEnd.sampleRate) Hz), the store has \(store.manifest.frontEndHash) (\(store.frontEnd.sampleRate) Hz)")
        }
        if store.labels != config.labels {
            problems.append("classes: the run used \(config.labels.joined(separator: ",")), the store has \(store.labels.joined(separator: ","))")
        }
        if !problems.isEmpty {
            throw FileError("\(store.directory) does not match run \(run.path):\n  " + problems.joined(separator: "\n  ")
                + "\nPreprocess the corpus with the run's --preset and --labels.")
        }
    }

    /// Collective: the vector of every file of `files` (every rank gets all).
    public func vectors(store: FeatureStore, files: [Int], world: Communicator) throws -> [[Double]] {
        if let resnet {
            return try ResNetSETrainer.utteranceVectors(model: resnet, store: store, files: files,
                                                        allSegments: config.options.allSegments, world: world)
        }
        let ae = autoencoder!
        let rows = try UtteranceFeatures.table(store: store, files: files, world: world)
        return FamilyEncoder.codes(ae, rows)
    }

    /// Latent codes of raw feature rows (no corruption).
    static func codes(_ ae: AutoencoderModel<Float>, _ rows: [[Double]]) -> [[Double]] {
        var out: [[Double]] = []
        var start = 0
        let d = ae.inputs
        while start < rows.count {
            let n = min(256, rows.count - start)
            var x = [Float](repeating: 0, count: n * d)
            for k in 0..<n { for j in 0..<d { x[k * d + j] = Float(rows[start + k][j]) } }
            x.withUnsafeBufferPointer { ae.forward($0.baseAddress!, batch: n) }
            let z = ae.code
            for k in 0..<n { out.append((0..<ae.latent).map { Double(z[k * ae.latent + $0]) }) }
            start += n
        }
        return out
    }
}
