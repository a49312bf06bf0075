import Foundation
import Shared

/// A file a task produced: its path relative to the output folder and its bytes.
public struct TaskOutput: Sendable {
    public var name: String
    public var data: Data
    public init(name: String, data: Data) {
        self.name = name
        self.data = data
    }
}

/// `OUT/<method>/<stem>.json`: what one task found (written last: its presence means the task's
/// other files are complete).
public struct TaskRecord: Codable, Sendable {
    public var status: String
    public var method: String
    /// Store file id (nil for a file from --manifest).
    public var file: Int?
    public var path: String
    public var audio: String
    public var stem: String
    public var label: String?
    public var prediction: String
    /// File-level probabilities (mean over the GDS-kept patches).
    public var probabilities: [String: Double]
    public var target: String
    public var targetProbability: Double
    public var patches: Int
    public var keptPatches: Int
    public var frames: Int
    public var secondsOfAudio: Double
    public var parameters: [String: String]
    /// Hash of the model and of the settings that decide this output (a rerun reuses the task only if equal).
    public var fingerprint: String
    public var timing: Timing
    public var faithfulness: Faithfulness.FileScores?
    public var pointing: Faithfulness.Pointing?
    public var audible: Audible?
    public var notes: [String: Double]?
    public var rank: Int
    public var outputs: [String]

    public struct Timing: Codable, Sendable {
        public var seconds: Double
        /// Patches sent through the network (forward passes, each one segment).
        public var forwardPasses: Int
        public init(seconds: Double, forwardPasses: Int) {
            self.seconds = seconds
            self.forwardPasses = forwardPasses
        }
    }

    public struct Audible: Codable, Sendable {
        /// Share of the samples the gate keeps.
        public var keptShare: Double
        public var smoothingFrames: Int
        public init(keptShare: Double, smoothingFrames: Int) {
            self.keptShare = keptShare
            self.smoothingFrames = smoothingFrames
        }
    }

    public init(status: String, method: String, file: Int?, path: String, audio: String, stem: String, label: String?,
                prediction: String, probabilities: [String: Double], target: String, targetProbability: Double, patches: Int,
                keptPatches: Int, frames: Int, secondsOfAudio: Double, parameters: [String: String], fingerprint: String,
                timing: Timing, faithfulness: Faithfulness.FileScores?, pointing: Faithfulness.Pointing?, audible: Audible?,
                notes: [String: Double]?, rank: Int, outputs: [String]) {
        self.status = status
        self.method = method
        self.file = file
        self.path = path
        self.audio = audio
        self.stem = stem
        self.label = label
        self.prediction = prediction
        self.probabilities = probabilities
        self.target = target
        self.targetProbability = targetProbability
        self.patches = patches
        self.keptPatches = keptPatches
        self.frames = frames
        self.secondsOfAudio = secondsOfAudio
        self.parameters = parameters
        self.fingerprint = fingerprint
        self.timing = timing
        self.faithfulness = faithfulness
        self.pointing = pointing
        self.audible = audible
        self.notes = notes
        self.rank = rank
        self.outputs = outputs
    }
}

public enum ExplainOutputs {
    /// Where a task's files go, relative to OUT.
    public struct Names: Sendable {
        public let method: ExplainMethod
        public let stem: String
        public init(method: ExplainMethod, stem: String) {
            self.method = method
            self.stem = stem
        }
        var base: String { "\(method.rawValue)/\(stem)" }
        public var safetensors: String { base + ".safetensors" }
        public var png: String { base + ".png" }
        public var json: String { base + ".json" }
        public var audible: String { base + ".audible.wav" }
        public var masked: String { base + ".masked.wav" }
    }

    /// 16-bit PCM WAV bytes written by libsndfile (through a temporary file: libsndfile writes files).
    public static func wav(_ samples: [Float], sampleRate: Int) throws -> Data {
        let tmp = NSTemporaryDirectory() + "ser-explain-\(getpid())-\(UInt64.random(in: 0 ... .max)).wav"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try AudioFile.write(tmp, samples: samples, sampleRate: sampleRate)
        return try readFile(tmp)
    }

    /// The spectrogram with the map over it: a perceptual sequential map (magma) for Grad-CAM,
    /// whose values are ≥ 0, and a diverging one centred on 0 for LIME and occlusion, whose
    /// values have a sign.
    public static func png(map: [Float], logMel: [Float], frames: Int, method: ExplainMethod, frontEnd fe: FrontEndConfig,
                           title: String) throws -> Data {
        var image = SpectrogramImage(logMel: logMel, frames: frames, bands: fe.melBands,
                                     secondsPerFrame: Double(fe.hopLength) / Double(fe.sampleRate), bandCentersHz: fe.melBandCentersHz)
        image.overlayLabel = method == .gradcam ? "Grad-CAM" : method == .lime ? "LIME weight" : "prob. drop"
        let raster = image.render(overlay: map, overlayMap: method == .gradcam ? .magma : .blueWhiteRed,
                                  alpha: 0.6, title: title)
        return try raster.pngData()
    }

    /// Writes a task's files under `out` (each atomically; the JSON summary last).
    public static func write(_ outputs: [TaskOutput], to out: String) throws {
        for o in outputs {
            let path = out + "/" + o.name
            try AtomicFile.makeDirectory((path as NSString).deletingLastPathComponent)
            try AtomicFile.write(o.data, to: path)
        }
    }

    /// The finished task at OUT/<method>/<stem>.json if it matches `fingerprint` and its files are all there.
    public static func finished(out: String, method: ExplainMethod, stem: String, fingerprint: String) -> TaskRecord? {
        let names = Names(method: method, stem: stem)
        guard let data = try? readFile(out + "/" + names.json),
              let record = try? JSONDecoder().decode(TaskRecord.self, from: data),
              record.status == "ok", record.fingerprint == fingerprint,
              record.outputs.allSatisfy({ FileManager.default.fileExists(atPath: out + "/" + $0) }) else { return nil }
        return record
    }
}

/// `OUT/index.json`: every task of the last `ser explain` with its status.
public struct ExplainIndex: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var file: Int?
        public var path: String
        public var stem: String
        public var method: String
        /// ok, failed or pending.
        public var status: String
        public var reason: String?
        public var outputs: [String]
        public var rank: Int?
        public var seconds: Double?
        /// True when a previous run's output was reused.
        public var reused: Bool

        public init(file: Int?, path: String, stem: String, method: String, status: String, reason: String? = nil,
                    outputs: [String] = [], rank: Int? = nil, seconds: Double? = nil, reused: Bool = false) {
            self.file = file
            self.path = path
            self.stem = stem
            self.method = method
            self.status = status
            self.reason = reason
            self.outputs = outputs
            self.rank = rank
            self.seconds = seconds
            self.reused = reused
        }
    }

    public var run: String
    public var methods: [String]
    /// The run's classes and mel band centres, and the Grad-CAM layer (for the profiles).
    public var labels: [String]
    public var bandCentersHz: [Double]
    public var layer: String
    public var ranks: Int
    public var counts: [String: Int]
    public var tasks: [Entry]

    public init(run: String, methods: [String], labels: [String], bandCentersHz: [Double], layer: String, ranks: Int, tasks: [Entry]) {
        self.run = run
        self.methods = methods
        self.labels = labels
        self.bandCentersHz = bandCentersHz
        self.layer = layer
        self.ranks = ranks
        self.tasks = tasks
        var c: [String: Int] = ["ok": 0, "failed": 0, "pending": 0]
        for t in tasks { c[t.status, default: 0] += 1 }
        counts = c
    }

    public static func read(_ path: String) throws -> ExplainIndex {
        do {
            return try JSONDecoder().decode(ExplainIndex.self, from: try readFile(path))
        } catch let e as FileError {
            throw e
        } catch {
            throw FileError("\(path): not an explanation index (\(error)); rerun `ser explain` to rebuild it")
        }
    }
}

/// `OUT/faithfulness.json`: per method, how the maps fare against random orders and cue boxes.
public struct FaithfulnessSummary: Codable, Sendable {
    public struct Comparison: Codable, Sendable {
        public var method: Double
        public var random: Double
        /// Mean per-file advantage over random (deletion: random − method; insertion: method −
        /// random; positive = better than random) and its standard error.
        public var advantage: Double
        public var standardError: Double?
        /// "better than random" or "worse than random" when the mean advantage is beyond 2
        /// standard errors, else "no better than random"; "too few files" below 2 files.
        public var verdict: String
    }

    public struct Method: Codable, Sendable {
        public var method: String
        public var ok: Int
        public var failed: Int
        public var files: Int
        public var deletionAUC: Comparison?
        public var insertionAUC: Comparison?
        /// Pointing game over the files with cue boxes: hits / files, and the chance level.
        public var pointingFiles: Int
        public var pointingHits: Int
        public var pointingRate: Double?
        public var pointingChance: Double?
        public var meanSeconds: Double
        public var forwardPassesPerSecond: Double
    }

    public var methods: [Method]

    static func compare(_ pairs: [(method: Double, random: Double)], lowerIsBetter: Bool) -> Comparison? {
        guard !pairs.isEmpty else { return nil }
        let n = Double(pairs.count)
        let adv = pairs.map { lowerIsBetter ? $0.random - $0.method : $0.method - $0.random }
        let mean = adv.reduce(0, +) / n
        var se: Double?
        var verdict = "too few files"
        if pairs.count > 1 {
            let s = (adv.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)).squareRoot() / n.squareRoot()
            se = s
            verdict = mean - 2 * s > 0 ? "better than random" : mean + 2 * s < 0 ? "worse than random" : "no better than random"
        }
        return Comparison(method: pairs.map(\.method).reduce(0, +) / n, random: pairs.map(\.random).reduce(0, +) / n,
                          advantage: mean, standardError: se, verdict: verdict)
    }

    /// Aggregates the finished tasks' records; `failed` counts failed tasks per method.
    public init(records: [TaskRecord], failed: [String: Int], methods order: [String]) {
        var out: [Method] = []
        let byMethod = Dictionary(grouping: records, by: \.method)
        for name in order {
            let rs = byMethod[name] ?? []
            let f = rs.compactMap(\.faithfulness)
            let pts = rs.compactMap(\.pointing)
            let seconds = rs.map(\.timing.seconds).reduce(0, +)
            out.append(Method(
                method: name, ok: rs.count, failed: failed[name] ?? 0, files: Set(rs.map(\.stem)).count,
                deletionAUC: Self.compare(f.map { ($0.deletionAUC, $0.randomDeletionAUC) }, lowerIsBetter: true),
                insertionAUC: Self.compare(f.map { ($0.insertionAUC, $0.randomInsertionAUC) }, lowerIsBetter: false),
                pointingFiles: pts.count, pointingHits: pts.filter(\.hit).count,
                pointingRate: pts.isEmpty ? nil : Double(pts.filter(\.hit).count) / Double(pts.count),
                pointingChance: pts.isEmpty ? nil : pts.map(\.chance).reduce(0, +) / Double(pts.count),
                meanSeconds: rs.isEmpty ? 0 : seconds / Double(rs.count),
                forwardPassesPerSecond: seconds > 0 ? Double(rs.map(\.timing.forwardPasses).reduce(0, +)) / seconds : 0))
        }
        methods = out
    }

    /// The table `ser explain --summary` prints.
    public var table: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "-" }
        // Foundation on Linux ignores field widths for %@: pad by hand.
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        let widths = [10, 5, 7, 30, 30, 32, 7]
        func row(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == 1 || i == 2 || i == 6 ? lpad(c, widths[i]) : pad(c, widths[i]) }.joined(separator: " ")
        }
        var lines = [row(["method", "ok", "failed", "deletion AUC (lower better)", "insertion AUC (higher better)", "pointing game", "s/task"])]
        for m in methods {
            let del = m.deletionAUC.map { "\(f($0.method)) vs random \(f($0.random))" } ?? "-"
            let ins = m.insertionAUC.map { "\(f($0.method)) vs random \(f($0.random))" } ?? "-"
            let pg = m.pointingRate.map { "\(m.pointingHits)/\(m.pointingFiles) = \(f($0)) (chance \(f(m.pointingChance)))" } ?? "-"
            lines.append(row([m.method, String(m.ok), String(m.failed), del, ins, pg, String(format: "%.2f", m.meanSeconds)]))
        }
        var verdicts: [String] = []
        for m in methods {
            if let d = m.deletionAUC, let i = m.insertionAUC {
                verdicts.append("\(m.method): deletion \(d.verdict) (advantage \(f(d.advantage)) ± \(f(d.standardError))), insertion \(i.verdict) (advantage \(f(i.advantage)) ± \(f(i.standardError)))")
            }
        }
        return (lines + verdicts).joined(separator: "\n")
    }
}

/// What is computed from the finished tasks as a whole: faithfulness.json, profiles.json/.svg.
public enum ExplainReport {
    /// Reads the records of the index's finished tasks and writes OUT/faithfulness.json and, when
    /// Grad-CAM ran, OUT/profiles.json and OUT/profiles.svg. Unreadable task files are reported
    /// through `warn` and left out.
    public static func write(out: String, index: ExplainIndex, warn: (String) -> Void) throws -> (FaithfulnessSummary, FrequencyProfile?) {
        var records: [TaskRecord] = []
        var failed: [String: Int] = [:]
        var profiles: [(label: String, profile: [Double])] = []
        for t in index.tasks {
            if t.status == "failed" { failed[t.method, default: 0] += 1 }
            guard t.status == "ok", let method = ExplainMethod(rawValue: t.method) else { continue }
            let names = ExplainOutputs.Names(method: method, stem: t.stem)
            do {
                let record = try JSONDecoder().decode(TaskRecord.self, from: try readFile(out + "/" + names.json))
                records.append(record)
                if method == .gradcam, let label = record.label, index.labels.contains(label) {
                    let st = try SafeTensors.read(path: out + "/" + names.safetensors)
                    profiles.append((label, try st.require("band_profile", in: names.safetensors).doubles()))
                }
            } catch {
                warn("\(out)/\(names.json): \(error); left out of the summary (rerun `ser explain` to recompute it)")
            }
        }
        let summary = FaithfulnessSummary(records: records, failed: failed, methods: index.methods)
        try AtomicFile.write(try jsonText(summary) + "\n", to: out + "/faithfulness.json")
        var profile: FrequencyProfile?
        if index.methods.contains(ExplainMethod.gradcam.rawValue), !profiles.isEmpty {
            let p = FrequencyProfile(labels: index.labels, bandCentersHz: index.bandCentersHz, layer: index.layer, files: profiles)
            try AtomicFile.write(try jsonText(p) + "\n", to: out + "/profiles.json")
            try AtomicFile.write(p.svg(), to: out + "/profiles.svg")
            profile = p
        }
        return (summary, profile)
    }
}
