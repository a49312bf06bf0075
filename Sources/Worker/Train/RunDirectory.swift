import Foundation
import Shared

/// The files of a training run.
///
///     RUN/config.json            options used (and the store and model they resolved to)
///     RUN/metrics.jsonl          one JSON line per epoch: training loss, speed, validation
///     RUN/checkpoints/           ckpt-stepNNNNNNNNN.safetensors.zst (last N + best)
///     RUN/weights.safetensors    final weights (plain safetensors, with the configuration)
///     RUN/evaluation.json        final segment- and file-level evaluation on the test split
public struct RunDirectory: Sendable {
    public let path: String
    public init(_ path: String) { self.path = path }

    public var config: String { path + "/config.json" }
    public var metrics: String { path + "/metrics.jsonl" }
    public var checkpoints: String { path + "/checkpoints" }
    public var weights: String { path + "/weights.safetensors" }
    public var evaluation: String { path + "/evaluation.json" }

    /// Appends one line to metrics.jsonl (rewritten atomically, so a crash never leaves half a line).
    public func appendMetrics(_ line: String) throws {
        let old = (try? String(contentsOfFile: metrics, encoding: .utf8)) ?? ""
        try AtomicFile.write(old + line + "\n", to: metrics)
    }

    /// The metrics lines, decoded.
    public func metricsLines() -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: metrics, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

/// What `ser train` records about a run in config.json.
public struct RunConfig: Codable, Sendable {
    public var options: TrainOptions
    public var labels: [String]
    public var frontEnd: FrontEndConfig
    public var frontEndHash: String
    public var store: StoreIdentity
    public var configHash: String
    public var parameters: Int
    public var ranks: Int
    public var threadsPerRank: Int

    public static func load(_ run: RunDirectory) throws -> RunConfig {
        let data = try readFile(run.config)
        do {
            return try JSONDecoder().decode(RunConfig.self, from: data)
        } catch {
            throw FileError("\(run.config): not a ser run configuration (\(error)); is \(run.path) a directory written by `ser train`?")
        }
    }
}

/// JSON text of an encodable value (sorted keys, for stable files).
public func jsonText<T: Encodable>(_ value: T) throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try enc.encode(value), as: UTF8.self)
}

public func jsonLine(_ dict: [String: Any]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}
