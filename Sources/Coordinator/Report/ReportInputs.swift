import Foundation
import Shared
import Worker

/// One run directory as the report sees it. Fusion runs (`ser train --model fusion-v1|…`) and
/// model-family runs (`--model ae|dae|resnet-se`, whose config.json has a "family" field) share
/// the layout; config.json is read as plain JSON so that either kind, and fields added later,
/// load. Loading never throws: what cannot be read becomes a `problem` the page shows.
struct ReportRun {
    let path: String
    /// Shown in tables and legends; unique among the runs of a report.
    var name: String
    var config: [String: Any] = [:]
    /// The same, typed (booleans told apart from numbers), for listing every field.
    var configJSON: JSONValue = .object([:])
    var configProblem: String?
    /// Metrics lines, one per epoch (the last line of an epoch wins, should a resumed run have
    /// written one twice).
    var epochs: [[String: Any]] = []
    var metricsLines = 0
    var metricsProblem: String?
    var evaluation: EvaluationFigures?
    var evaluationProblem: String?
    var store: StoreManifest?
    var storePath: String?
    var storeProblem: String?

    var family: String? { config["family"] as? String }
    var options: [String: Any] { config["options"] as? [String: Any] ?? [:] }
    var labels: [String] { config["labels"] as? [String] ?? evaluation?.files.labels ?? store?.labels ?? [] }

    /// The network or family, with its width for fusion-family networks ("fusion-v1 ×0.25").
    var modelName: String {
        if let family { return family }
        let model = options["model"] as? [String: Any] ?? [:]
        let arch = model["architecture"] as? String ?? "?"
        if let w = ReportRun.double(model["width"]), w != 1 { return "\(arch) ×\(ReportRun.trim(w))" }
        return arch
    }

    var split: String { options["split"] as? String ?? "random" }
    var allSegments: Bool { options["allSegments"] as? Bool ?? false }

    /// Whether training saw only the segments Gaussian data selection kept.
    var gds: String {
        if family == "ae" || family == "dae" { return "n/a (whole utterances)" }
        if allSegments { return "off (--all-segments)" }
        guard let store else { return "unknown (store not found)" }
        return store.gds.enabled ? "on (T = \(ReportRun.trim(store.gds.threshold)))" : "off (store made with --gds off)"
    }

    /// Σ train_seconds over every metrics line: the compute time the training took, including an
    /// epoch repeated after a resume.
    var trainingSeconds: Double?
    var ranks: Int? { config["ranks"] as? Int }
    var threadsPerRank: Int? { config["threadsPerRank"] as? Int }

    static func trim(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%g", v)
    }

    static func load(_ path: String, name: String, features: String? = nil) -> ReportRun {
        var run = ReportRun(path: path, name: name)
        let dir = RunDirectory(path)
        do {
            let data = try readFile(dir.config)
            guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw FileError("not a JSON object")
            }
            run.config = obj
            run.configJSON = (try? JSONDecoder().decode(JSONValue.self, from: data)) ?? .object([:])
        } catch {
            run.configProblem = FileManager.default.fileExists(atPath: dir.config)
                ? "\(dir.config) cannot be read (\(error)); is it a file written by `ser train`?"
                : "\(dir.config) is missing: \(path) is not a run directory written by `ser train`"
        }
        run.loadMetrics(dir)
        run.loadEvaluation(dir)
        run.loadStore(override: features)
        return run
    }

    mutating func loadMetrics(_ dir: RunDirectory) {
        guard let text = try? String(contentsOfFile: dir.metrics, encoding: .utf8) else {
            metricsProblem = "\(dir.metrics) is missing: the run has not finished an epoch yet"
            return
        }
        var byEpoch: [Int: [String: Any]] = [:], order: [Int] = [], bad: [Int] = []
        var seconds = 0.0, anySeconds = false
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                bad.append(i + 1)
                continue
            }
            metricsLines += 1
            if let s = ReportRun.double(obj["train_seconds"]) { seconds += s; anySeconds = true }
            let epoch = (obj["epoch"] as? Int) ?? (order.last.map { $0 + 1 } ?? 1)
            if byEpoch[epoch] == nil { order.append(epoch) }
            byEpoch[epoch] = obj
        }
        epochs = order.sorted().map { byEpoch[$0]! }
        trainingSeconds = anySeconds ? seconds : nil
        if !bad.isEmpty {
            metricsProblem = "\(dir.metrics): line(s) \(bad.map(String.init).joined(separator: ", ")) are not JSON and were left out"
        }
    }

    mutating func loadEvaluation(_ dir: RunDirectory) {
        guard FileManager.default.fileExists(atPath: dir.evaluation) else {
            evaluationProblem = "\(dir.evaluation) is missing: the run has not finished (continue it with `ser train --resume \(path)`)"
            return
        }
        do {
            let e = try JSONDecoder().decode(EvaluationFigures.self, from: try readFile(dir.evaluation))
            try e.files.checkShape(field: "files", file: dir.evaluation)
            try e.segments?.checkShape(field: "segments", file: dir.evaluation)
            for (name, c) in e.classifiers ?? [:] { try c.checkShape(field: "classifiers.\(name)", file: dir.evaluation) }
            evaluation = e
        } catch let e as FileError {
            evaluationProblem = e.description
        } catch {
            evaluationProblem = "\(dir.evaluation) cannot be read (\(error)); rerun the run's final evaluation with `ser train --resume \(path)`"
        }
    }

    /// The store the run trained on: `--features` if given, else options.features of config.json
    /// (as written: relative to where `ser train` ran, so also tried beside the run directory).
    mutating func loadStore(override: String?) {
        var candidates: [String] = []
        if let override { candidates.append(override) } else if let f = options["features"] as? String {
            candidates.append(f)
            if !f.hasPrefix("/") {
                let parent = ((path as NSString).standardizingPath as NSString).deletingLastPathComponent
                candidates += [parent + "/" + f, path + "/" + f]
            }
        } else {
            storeProblem = "the run's config.json names no feature store (options.features)"
            return
        }
        guard let dir = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/" + StoreManifest.fileName) }) else {
            storeProblem = "feature store \(candidates[0]) not found (no \(StoreManifest.fileName) there); pass the store's new place with --features"
            return
        }
        let file = dir + "/" + StoreManifest.fileName
        do {
            store = try JSONDecoder().decode(StoreManifest.self, from: try readFile(file))
            storePath = dir
        } catch {
            storeProblem = "\(file) cannot be read (\(error)); `ser store info \(dir)` checks the store"
        }
    }

    /// A numeric metrics value (JSON numbers may come back as Int or Double).
    static func double(_ v: Any?) -> Double? {
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        if let n = v as? NSNumber { return n.doubleValue }
        return nil
    }

    /// The values of a metrics field over the epochs (NaN where an epoch lacks it), or nil when no
    /// epoch has it.
    func series(_ key: String) -> [Double]? {
        let v = epochs.map { ReportRun.double($0[key]) ?? .nan }
        return v.contains(where: { $0.isFinite }) ? v : nil
    }

    var epochNumbers: [Double] {
        epochs.enumerated().map { i, e in ReportRun.double(e["epoch"]) ?? Double(i + 1) }
    }
}

/// The parts of RUN/evaluation.json the report uses: `files` is common to fusion and family runs
/// (`EvaluationResult`, `FamilyEvaluation`); the rest is one kind's own.
struct EvaluationFigures: Decodable {
    var files: ClassificationReport
    var segments: ClassificationReport?
    var loss: Double?
    var filePredictions: [EvaluationResult.FilePrediction]?
    /// Model families: every classifier evaluated, by name.
    var classifiers: [String: ClassificationReport]?
    var reconstructionMSE: Double?
    var verification: Verification?
}

extension ClassificationReport {
    /// Precision and recall index the matrix by label: a damaged file must not crash the report.
    func checkShape(field: String, file: String) throws {
        let n = labels.count
        guard confusion.count == n, confusion.allSatisfy({ $0.count == n }), confusion.allSatisfy({ $0.allSatisfy { $0 >= 0 } }) else {
            throw FileError("\(file): \(field).confusion is not a \(n)×\(n) matrix of counts for the labels \(labels.joined(separator: ",")); the file is damaged (rerun the evaluation with `ser train --resume`)")
        }
    }
}

/// What `ser explain` left in an output folder (docs/EXPLAIN.md §7). Each part is optional; a
/// part that is absent or unreadable has a note saying so.
struct ReportExplanations {
    let directory: String
    var index: ExplainIndex?
    var indexProblem: String?
    var records: [String: TaskRecord] = [:]    // key: method/stem
    var recordProblems: [String] = []
    var faithfulness: FaithfulnessSummary?
    var faithfulnessProblem: String?
    var profile: FrequencyProfile?
    var profileProblem: String?

    static func key(_ method: String, _ stem: String) -> String { method + "/" + stem }

    static func load(_ directory: String) -> ReportExplanations {
        var e = ReportExplanations(directory: directory)
        let indexPath = directory + "/index.json"
        if !FileManager.default.fileExists(atPath: indexPath) {
            e.indexProblem = FileManager.default.fileExists(atPath: directory)
                ? "\(indexPath) is missing: \(directory) holds no finished `ser explain` job"
                : "no explanations in \(directory)"
        } else {
            do {
                let index = try ExplainIndex.read(indexPath)
                e.index = index
                for t in index.tasks where t.status == "ok" {
                    let file = "\(directory)/\(t.method)/\(t.stem).json"
                    do {
                        e.records[key(t.method, t.stem)] = try JSONDecoder().decode(TaskRecord.self, from: try readFile(file))
                    } catch {
                        e.recordProblems.append("\(file): \(error)")
                    }
                }
            } catch {
                e.indexProblem = "\(error)"
            }
        }
        let faithPath = directory + "/faithfulness.json"
        if FileManager.default.fileExists(atPath: faithPath) {
            do {
                e.faithfulness = try JSONDecoder().decode(FaithfulnessSummary.self, from: try readFile(faithPath))
            } catch {
                e.faithfulnessProblem = "\(faithPath) cannot be read (\(error)); `ser explain --summary --out \(directory)` rewrites it"
            }
        } else {
            e.faithfulnessProblem = "\(faithPath) is missing"
        }
        let profilePath = directory + "/profiles.json"
        if FileManager.default.fileExists(atPath: profilePath) {
            do {
                let p = try JSONDecoder().decode(FrequencyProfile.self, from: try readFile(profilePath))
                guard p.profiles.values.allSatisfy({ $0.count == p.bandCentersHz.count }) else {
                    throw FileError("a profile's length differs from the \(p.bandCentersHz.count) band centres")
                }
                e.profile = p
            } catch {
                e.profileProblem = "\(profilePath) cannot be read (\(error)); `ser explain --summary --out \(directory)` rewrites it"
            }
        } else {
            e.profileProblem = "\(profilePath) is missing (it needs Grad-CAM tasks on labelled files)"
        }
        return e
    }

    /// Per file (stem, in index order): the finished tasks of each method.
    var files: [(stem: String, path: String, tasks: [String: TaskRecord])] {
        guard let index else { return [] }
        var order: [String] = [], paths: [String: String] = [:], byStem: [String: [String: TaskRecord]] = [:]
        for t in index.tasks {
            if paths[t.stem] == nil { order.append(t.stem); paths[t.stem] = t.path }
            if let r = records[ReportExplanations.key(t.method, t.stem)] { byStem[t.stem, default: [:]][t.method] = r }
        }
        return order.compactMap { s in byStem[s].map { (s, paths[s]!, $0) } }
    }
}

/// Any JSON value. JSONDecoder keeps true apart from 1 (JSONSerialization's NSNumber does not).
indirect enum JSONValue: Decodable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let d) = self { return d[key] }
        return nil
    }

    var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map(\.text).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\($0): \(o[$0]!.text)" }.joined(separator: ", ") + "}"
        }
    }
}
