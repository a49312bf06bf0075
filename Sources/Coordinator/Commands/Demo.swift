import ArgumentParser
import Foundation
import Shared

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole pipeline on the built-in synthetic corpus and write the report.",
        discussion: """
        synthesise a corpus → preprocess it (log-mel, Gaussian data selection, sharded store) → train \
        fusion-v1 with --ranks ranks → evaluate on the held-out files → explain a few of them with \
        Grad-CAM, LIME and occlusion → write an HTML report. Each stage is the ser command a user \
        would run, printed before it starts. Takes a few minutes on 2 cores.
        """
    )

    @Option(help: "Directory for everything the demo writes.")
    var out: String = "demo"

    @Option(name: .customLong("files-per-class"), help: "Synthetic files per emotion (2 s each).")
    var filesPerClass: Int = 60

    @Option(help: "Training epochs.")
    var epochs: Int = 10

    @Option(help: "Channel multiplier of fusion-v1 (1 = the published network).")
    var width: Double = 1

    @Option(name: .customLong("learning-rate"), help: "Adam learning rate (the paper's 0.01 is unstable on a corpus this small).")
    var learningRate: Double = 0.001

    @Option(help: "MPI ranks for training and explaining (needs Open MPI; 1 runs without it).")
    var ranks: Int = 2

    @Option(name: .customLong("explain-files"), help: "Test files to explain with every method.")
    var explainFiles: Int = 4

    @Option(help: "Seed for the corpus, the split and training.")
    var seed: UInt64 = 1

    func validate() throws {
        if filesPerClass < 10 { throw ValidationError("--files-per-class must be at least 10 (the test split needs files of every class)") }
        if epochs < 1 || ranks < 1 || explainFiles < 1 { throw ValidationError("--epochs, --ranks and --explain-files must be positive") }
    }

    func run() throws {
        let console = Console()
        let dir = URL(fileURLWithPath: out).standardizedFileURL.path
        try AtomicFile.makeDirectory(dir)
        let corpus = dir + "/corpus", store = dir + "/store", run = dir + "/run", report = dir + "/report.html"
        let started = Date()
        let stages: [(String, [String])] = [
            ("Synthesising a corpus of emotional speech (4 classes, \(filesPerClass) files each)",
             ["synth", "--out", corpus, "--files-per-class", String(filesPerClass), "--seed", String(seed)]),
            ("Preprocessing: log-mel patches, Gaussian data selection, sharded feature store",
             ["preprocess", "--corpus", "synth:" + corpus, "--out", store, "--seed", String(seed)]),
            ("Training fusion-v1 (VGGish + YAMNet late fusion) on \(ranks) rank(s), evaluating after every epoch",
             ["train", "--features", store, "--out", run, "--epochs", String(epochs), "--width", String(width),
              "--learning-rate", String(learningRate), "--seed", String(seed), "--ranks", String(ranks)]),
            ("Explaining \(explainFiles) test files with Grad-CAM, LIME and occlusion sensitivity (tasks farmed out to the ranks)",
             ["explain", "--run", run, "--split", "test", "--limit", String(explainFiles), "--methods", "gradcam,lime,occlusion",
              "--ranks", String(ranks), "--quiet"]),
            ("Writing the report", ["report", run, "--out", report]),
        ]
        for (i, stage) in stages.enumerated() {
            console.notice("\n[\(i + 1)/\(stages.count)] \(stage.0)\n  $ ser \(stage.1.joined(separator: " "))")
            if stage.1[0] == "train" && FileManager.default.fileExists(atPath: run + "/weights.safetensors") {
                console.notice("  (already trained: \(run)/weights.safetensors exists; delete \(run) to train again)")
                continue
            }
            let t0 = Date()
            let status = try SerProcess.run(stage.1)
            guard status == 0 else {
                throw ValidationError("stage \(i + 1) (ser \(stage.1[0])) failed with status \(status); its output is above. Fix the cause and run `ser demo --out \(out)` again: finished stages are kept.")
            }
            console.notice("  done in \(formatDuration(Date().timeIntervalSince(t0)))")
        }
        console.notice("\nThe demo took \(formatDuration(Date().timeIntervalSince(started))). Open the report:\n  \(report)")
    }
}
