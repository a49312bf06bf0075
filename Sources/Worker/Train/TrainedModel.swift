import Foundation
import Shared

/// A trained run loaded back for inference and explanation.
public struct TrainedModel {
    public let run: RunDirectory
    public let config: RunConfig
    public let net: Network<Float>

    public var labels: [String] { config.labels }
    public var frontEnd: FrontEndConfig { config.frontEnd }

    /// Loads RUN/config.json and RUN/weights.safetensors (or, with `checkpoint`, a checkpoint file).
    public static func load(_ path: String, checkpoint: String? = nil) throws -> TrainedModel {
        let run = RunDirectory(path)
        let config = try RunConfig.load(run)
        var model = config.options.model
        model.classes = config.labels.count
        model.frames = config.frontEnd.patchFrames
        model.bands = config.frontEnd.melBands
        let net = try Network<Float>(config: model)
        if let checkpoint {
            let (_, tensors) = try Checkpoint.read(checkpoint)
            try Checkpoint.restore(tensors, source: checkpoint, into: net.params, adam: nil)
        } else {
            guard FileManager.default.fileExists(atPath: run.weights) else {
                throw FileError("\(run.weights): no final weights; the run has not finished (use its newest checkpoint with --checkpoint, or finish it with `ser train --resume \(path)`)")
            }
            try net.params.load(try SafeTensors.read(path: run.weights), source: run.weights)
        }
        return TrainedModel(run: run, config: config, net: net)
    }

    /// Refuses a feature store whose front end or class set differs from the one the run used.
    public func checkCompatible(with store: FeatureStore) throws {
        var problems: [String] = []
        if store.manifest.frontEndHash != config.frontEndHash {
            problems.append("front end: the run used \(config.frontEndHash) (\(config.frontEnd.sampleRate) Hz, hop \(config.frontEnd.hopLength)), the store has \(store.manifest.frontEndHash) (\(store.frontEnd.sampleRate) Hz, hop \(store.frontEnd.hopLength))")
        }
        if store.labels != config.labels {
            problems.append("classes: the run used \(config.labels.joined(separator: ",")), the store has \(store.labels.joined(separator: ","))")
        }
        if !problems.isEmpty {
            throw FileError("\(store.directory) does not match run \(run.path):\n  " + problems.joined(separator: "\n  ") + "\nPreprocess the files with the run's settings (ser preprocess --preset/--labels) or use a run trained on this store.")
        }
    }
}
