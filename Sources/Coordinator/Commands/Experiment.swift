import ArgumentParser
import Foundation
import Shared
import Worker

struct Experiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reproduce the paper's comparisons on a corpus and write one report.",
        discussion: """
        Preprocesses the corpora once, then trains, with the same seed and splits: fusion-v1 with \
        and without Gaussian data selection (the paper's Table 5), VGGish-only and YAMNet-only on \
        the same head (Figure 23), fusion-v1 and YAMNet-only from pretrained YAMNet weights when \
        --yamnet-weights is given, each on the random 85:15 file split and on the \
        speaker-independent split. Then explains the main run (per-emotion frequency profiles, \
        faithfulness) and writes DIR/report.html and DIR/results.md (tables with the paper's \
        figures beside). Runs that finished are skipped when the command is run again.
        """
    )

    @Option(help: "A corpus, KIND:PATH as for ser preprocess (repeat to mix corpora).")
    var corpus: [String] = []

    @Option(help: "Output directory (store, runs, explanations, report, results).")
    var out: String

    @Option(help: "Training epochs per run (the paper: 20).")
    var epochs: Int = 20

    @Option(name: .customLong("learning-rate"), help: "Adam learning rate (the paper: 0.01).")
    var learningRate: Double = 0.01

    @Option(help: "Seed for the splits, initialisation and data order (the same for every run).")
    var seed: UInt64 = 1

    @Option(help: "Splits: random, speaker, or both.")
    var splits: String = "random,speaker"

    @Option(help: "Models to compare (fusion-v1 always runs, with and without GDS).")
    var models: String = "fusion-v1,vggish-only,yamnet-only"

    @Option(name: .customLong("yamnet-weights"), help: "Pretrained YAMNet weights: adds runs that start YAMNet's branch from them.")
    var yamnetWeights: String?

    @Option(help: "Channel multiplier (1 = the published networks; small values for quick checks).")
    var width: Double = 1

    @Option(help: "MPI ranks for training and explaining.")
    var ranks: Int = 1

    @Option(help: "Matrix products of every run: fp32 or bf16 (see ser train --precision).")
    var precision: String = "fp32"

    @Option(name: .customLong("explain-files"), help: "Test files of the main run to explain (0: skip explanations).")
    var explainFiles: Int = 24

    @Option(name: .customLong("lime-samples"), help: "LIME perturbations per patch in the explanations.")
    var limeSamples: Int = 1000

    func validate() throws {
        if corpus.isEmpty { throw ValidationError("give at least one --corpus KIND:PATH") }
        let allowedSplits = Set(["random", "speaker"])
        if splitList.isEmpty || !Set(splitList).isSubset(of: allowedSplits) { throw ValidationError("--splits takes random and/or speaker") }
        for m in modelList where ModelConfig.Architecture(rawValue: m) == nil { throw ValidationError("unknown model \(m) in --models") }
        if epochs < 1 || ranks < 1 { throw ValidationError("--epochs and --ranks must be positive") }
        if MatmulPrecision(rawValue: precision) == nil { throw ValidationError("--precision must be fp32 or bf16 (got \(precision))") }
        if let w = yamnetWeights, !FileManager.default.fileExists(atPath: w) { throw ValidationError("--yamnet-weights \(w): no such file") }
    }

    var splitList: [String] { splits.split(separator: ",").map(String.init) }
    var modelList: [String] { models.split(separator: ",").map(String.init) }

    /// One training run of the matrix.
    struct Plan {
        let name: String
        let model: String
        let split: String
        let gds: Bool
        let pretrained: Bool
    }

    var plans: [Plan] {
        var p: [Plan] = []
        for split in splitList {
            p.append(Plan(name: "fusion-v1_gds_\(split)", model: "fusion-v1", split: split, gds: true, pretrained: false))
            p.append(Plan(name: "fusion-v1_nogds_\(split)", model: "fusion-v1", split: split, gds: false, pretrained: false))
            for m in modelList where m != "fusion-v1" {
                p.append(Plan(name: "\(m)_gds_\(split)", model: m, split: split, gds: true, pretrained: false))
            }
            if yamnetWeights != nil {
                for m in ["fusion-v1", "yamnet-only"] where m == "fusion-v1" || modelList.contains(m) {
                    p.append(Plan(name: "\(m)_pretrained_gds_\(split)", model: m, split: split, gds: true, pretrained: true))
                }
            }
        }
        return p
    }

    func run() throws {
        let console = Console()
        let dir = URL(fileURLWithPath: out).standardizedFileURL.path
        let store = dir + "/store"
        try AtomicFile.makeDirectory(dir + "/runs")
        var failures: [String] = []
        func stage(_ title: String, _ args: [String]) throws -> Bool {
            console.notice("\n== \(title)\n  $ ser \(args.joined(separator: " "))")
            let t0 = Date()
            let status = try SerProcess.run(args)
            console.notice(status == 0 ? "  done in \(formatDuration(Date().timeIntervalSince(t0)))" : "  FAILED with status \(status)")
            if status != 0 { failures.append("\(title) (status \(status))") }
            return status == 0
        }
        if !FileManager.default.fileExists(atPath: store + "/manifest.json") {
            guard try stage("Preprocessing \(corpus.joined(separator: " + "))", ["preprocess"] + corpus.flatMap { ["--corpus", $0] } + ["--out", store, "--seed", String(seed)]) else {
                throw ValidationError("preprocessing failed; see above")
            }
        }
        for plan in plans {
            let runDir = dir + "/runs/" + plan.name
            if FileManager.default.fileExists(atPath: runDir + "/evaluation.json") {
                console.notice("\n== \(plan.name): finished earlier, kept")
                continue
            }
            var args = ["train", "--features", store, "--out", runDir, "--model", plan.model, "--split", plan.split,
                        "--epochs", String(epochs), "--learning-rate", String(learningRate), "--seed", String(seed),
                        "--width", String(width), "--ranks", String(ranks), "--precision", precision, "--quiet"]
            if !plan.gds { args.append("--all-segments") }
            if plan.pretrained, let w = yamnetWeights { args += ["--yamnet-weights", w] }
            if FileManager.default.fileExists(atPath: runDir + "/config.json") { args += ["--resume", runDir] }
            _ = try stage("Training \(plan.name)", args)
        }
        let main = dir + "/runs/" + plans[0].name
        if explainFiles > 0, FileManager.default.fileExists(atPath: main + "/weights.safetensors") {
            _ = try stage("Explaining \(explainFiles) test files of \(plans[0].name)",
                          ["explain", "--run", main, "--split", "test", "--limit", String(explainFiles), "--methods", "gradcam,lime,occlusion",
                           "--lime-samples", String(limeSamples), "--ranks", String(ranks), "--precision", precision, "--quiet"])
        }
        let finished = plans.map { dir + "/runs/" + $0.name }.filter { FileManager.default.fileExists(atPath: $0 + "/evaluation.json") }
        if !finished.isEmpty {
            _ = try stage("Writing the report", ["report"] + finished + ["--out", dir + "/report.html", "--title", "SERCluster experiment: " + corpus.joined(separator: " + ")])
        }
        let table = try ExperimentResults(directory: dir, plans: plans.map { ($0.name, $0.model, $0.split, $0.gds, $0.pretrained) }).markdown(corpus: corpus, epochs: epochs, seed: seed, learningRate: learningRate)
        try AtomicFile.write(table, to: dir + "/results.md")
        print(table)
        console.notice("results: \(dir)/results.md; report: \(dir)/report.html")
        if !failures.isEmpty {
            throw ValidationError("\(failures.count) stage(s) failed: \(failures.joined(separator: "; ")). Run the same command again to retry them (finished runs are kept).")
        }
    }
}

/// The experiment's tables, from the runs' own files.
struct ExperimentResults {
    struct Row {
        let name, model, split: String
        let gds, pretrained: Bool
        let evaluation: EvaluationResult
        let trainSeconds: Double
        let segmentsPerEpoch: Int
    }

    let rows: [Row]
    let store: StoreManifest?

    init(directory: String, plans: [(String, String, String, Bool, Bool)]) throws {
        var rows: [Row] = []
        for (name, model, split, gds, pretrained) in plans {
            let run = RunDirectory(directory + "/runs/" + name)
            guard let data = try? readFile(run.evaluation), let eval = try? JSONDecoder().decode(EvaluationResult.self, from: data) else { continue }
            let metrics = run.metricsLines()
            let seconds = metrics.compactMap { $0["train_seconds"] as? Double }.reduce(0, +)
            let segments = (metrics.first?["train_segments"] as? Int) ?? 0
            rows.append(Row(name: name, model: model, split: split, gds: gds, pretrained: pretrained, evaluation: eval,
                            trainSeconds: seconds, segmentsPerEpoch: segments))
        }
        self.rows = rows
        store = (try? FeatureStore.open(directory + "/store"))?.manifest
    }

    func markdown(corpus: [String], epochs: Int, seed: UInt64, learningRate: Double) -> String {
        func pct(_ v: Double) -> String { String(format: "%.2f %%", 100 * v) }
        var md = "# Experiment results\n\nCorpus: \(corpus.joined(separator: " + ")). \(epochs) epochs, Adam lr \(learningRate), batch 128, seed \(seed); file-level figures on the held-out files (a file's prediction is the mean of its segments' probabilities). WA = accuracy, UA = mean per-class recall.\n"
        if let s = store {
            md += "\nStore: \(s.files.count) files, \(s.gdsTotals.segmentsBefore) segments before GDS, \(s.gdsTotals.segmentsAfter) after (\(pct(s.fractionRemoved)) removed).\n"
        }
        for split in ["random", "speaker"] {
            let r = rows.filter { $0.split == split }
            if r.isEmpty { continue }
            md += "\n## \(split == "random" ? "Random 85:15 file split" : "Speaker-independent split")\n\n"
            md += "| run | model | GDS | YAMNet init | WA | UA | macro-F1 | macro recall | segments/epoch | training time |\n|---|---|---|---|---|---|---|---|---|---|\n"
            for x in r {
                let e = x.evaluation.files
                md += "| \(x.name) | \(x.model) | \(x.gds ? "on" : "off") | \(x.pretrained ? "pretrained" : "random") | \(pct(e.weightedAccuracy)) | \(pct(e.unweightedAccuracy)) | \(pct(e.macroF1)) | \(pct(e.macroRecall)) | \(x.segmentsPerEpoch) | \(formatDuration(x.trainSeconds)) |\n"
            }
            if let on = r.first(where: { $0.model == "fusion-v1" && $0.gds && !$0.pretrained }),
               let off = r.first(where: { $0.model == "fusion-v1" && !$0.gds }) {
                md += String(format: "\nGDS: training time %@ with GDS vs %@ without (%.0f %% less); accuracy %@ vs %@. The paper (Table 5): 70.6 vs 89.9 min (21.5 %% less), 85.82 %% vs 86.54 %%.\n",
                             formatDuration(on.trainSeconds), formatDuration(off.trainSeconds), 100 * (1 - on.trainSeconds / max(1e-9, off.trainSeconds)),
                             pct(on.evaluation.files.weightedAccuracy), pct(off.evaluation.files.weightedAccuracy))
            }
        }
        md += "\nThe paper (Figure 23, its mixed corpus): fusion best, YAMNet-only worst; 86.54 % accuracy for fusion without GDS.\n"
        return md
    }
}
