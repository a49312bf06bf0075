import ArgumentParser
import Foundation
import Shared
import Worker

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain a trained model's predictions: Grad-CAM, LIME and occlusion maps, audible Grad-CAM, faithfulness.",
        discussion: """
        Each task is one file × one method. Rank 0 holds the queue and hands tasks to the other \
        ranks as they finish (it also computes tasks itself between answering them, unless \
        --no-coordinator-computes); one process runs every task itself. Run alone, with --ranks N, \
        or under mpirun/srun.

        Files: --files (store file ids or relative paths, comma-separated), --split test|train|all \
        (the run's split of its feature store) or --manifest CSV (audio files not in the store, \
        header path,label,speaker; the run's front end is applied to them).

        Output in --out (default RUN/explanations): <method>/<file>.safetensors (the maps), .png \
        (spectrogram with the map, axes in s and Hz), .json (prediction, probabilities, \
        parameters, timing, faithfulness); gradcam/<file>.audible.wav and .masked.wav; index.json \
        (every task with its status); faithfulness.json; profiles.json and profiles.svg (Grad-CAM \
        per mel band and emotion). docs/EXPLAIN.md describes the methods and formats.

        Every finished task is written atomically as soon as it is done; running the same command \
        again skips the finished tasks (same model and settings) and does the rest. A task that \
        fails is recorded with its reason and the others go on; the exit status is then 3. \
        `ser explain --summary --out OUT` prints the faithfulness table of a finished job.
        """
    )

    @Option(name: .customLong("run"), help: "Run directory written by `ser train` (its config.json and weights.safetensors).")
    var runPath: String?

    @Option(help: "Weights to explain instead of the run's final weights: one of its checkpoint files.")
    var checkpoint: String?

    @Option(help: "Feature store to take the files from (default: the one the run was trained on).")
    var features: String?

    @Option(parsing: .singleValue, help: "Store files to explain: file ids or relative paths, comma-separated (repeatable).")
    var files: [String] = []

    @Option(help: "Explain a split of the store: test, train (the run's split kind) or all.")
    var split: String?

    @Option(help: "CSV of audio files to explain (header path,label,speaker; label may be empty).")
    var manifest: String?

    @Option(help: "Explain at most this many files (the first ones of the selection).")
    var limit: Int?

    @Option(help: "Methods, comma-separated: gradcam, lime, occlusion.")
    var methods: String = "gradcam,lime,occlusion"

    @Option(help: "Output folder (default RUN/explanations).")
    var out: String?

    @Option(help: "Class to explain: predicted (the file-level prediction), label (the true label) or a class name.")
    var target: String = "predicted"

    @Option(help: "Grad-CAM layer: fused (6×4×1536), vggish-a, vggish-b, vggish-c or yamnet (YAMNet's last map, 3×2×1024).")
    var layer: String = "fused"

    @Option(name: .customLong("lime-samples"), help: "LIME: perturbed copies per patch.")
    var limeSamples: Int = 1000

    @Option(name: .customLong("lime-regions"), help: "LIME regions: grid:TxF (tiles), time:N (time slices), freq:N (mel band groups) or levels:N (loudness levels).")
    var limeRegions: String = "grid:8x4"

    @Option(name: .customLong("lime-kernel-width"), help: "LIME: width σ of the kernel exp(−d²/σ²) on cosine distance.")
    var limeKernelWidth: Double = 0.25

    @Option(name: .customLong("lime-ridge"), help: "LIME: ridge penalty λ of the weighted regression.")
    var limeRidge: Double = 1

    @Option(name: .customLong("occlusion-window"), help: "Occlusion window, frames×bands (or one number for a square).")
    var occlusionWindow: String = "16x16"

    @Option(name: .customLong("occlusion-stride"), help: "Occlusion stride, frames×bands (or one number).")
    var occlusionStride: String = "8x8"

    @Option(help: "Fill for hidden cells (LIME, occlusion, faithfulness): mean (the patch mean), min, or a log-mel value (write a negative one as --baseline=-6.9).")
    var baseline: String = "mean"

    @Option(help: "Patches per forward pass.")
    var batch: Int = 128

    @Option(help: "Audible Grad-CAM: width of the box filter over the time profile, in seconds.")
    var smoothing: Double = 0.1

    @Option(name: .customLong("audible-threshold"), help: "Audible Grad-CAM: keep audio where the smoothed profile exceeds this fraction of its maximum (0: where positive).")
    var audibleThreshold: Double = 0

    @Flag(name: .customLong("no-audio"), help: "Do not write Grad-CAM's WAV files (no need for the audio files).")
    var noAudio = false

    @Flag(name: .customLong("no-faithfulness"), help: "Skip the deletion/insertion curves.")
    var noFaithfulness = false

    @Option(name: .customLong("faithfulness-cells"), help: "Deletion/insertion cell size, frames×bands.")
    var faithfulnessCells: String = "8x8"

    @Option(name: .customLong("faithfulness-steps"), help: "Deletion/insertion: points per curve minus one.")
    var faithfulnessSteps: Int = 16

    @Option(name: .customLong("random-orders"), help: "Deletion/insertion: random cell orders per patch for the baseline.")
    var randomOrders: Int = 1

    @Option(help: "Seed for LIME's perturbations and the random orders.")
    var seed: UInt64 = 1

    @Flag(inversion: .prefixedNo, help: "Rank 0 also computes tasks between answering the workers.")
    var coordinatorComputes = true

    @Flag(help: "Print (and rewrite) the faithfulness summary of the tasks in --out, without computing anything.")
    var summary = false

    @Option(help: "Start this many MPI ranks on this machine (needs Open MPI).")
    var ranks: Int?

    @Option(help: "Compute threads per rank (default: the rank's share of the cores).")
    var threads: Int?

    @Option(help: "Matrix products in fp32 (OpenBLAS) or bf16 (float32 accumulation; AMX tiles or AVX512-BF16).")
    var precision: String = "fp32"

    @Flag(help: "Print only warnings and the summary.")
    var quiet = false

    // MARK: - Checks

    static func pair(_ text: String, _ flag: String) throws -> (Int, Int) {
        let parts = text.lowercased().split(separator: "x").map { Int($0) }
        if parts.count == 1, let a = parts[0], a >= 1 { return (a, a) }
        guard parts.count == 2, let a = parts[0], let b = parts[1], a >= 1, b >= 1 else {
            throw ValidationError("\(flag) \(text): expected FRAMESxBANDS with positive whole numbers, e.g. 16x16")
        }
        return (a, b)
    }

    func parsedMethods() throws -> [ExplainMethod] {
        var out: [ExplainMethod] = []
        for name in methods.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !name.isEmpty {
            guard let m = ExplainMethod(rawValue: name) else {
                throw ValidationError("--methods: unknown method '\(name)'; use gradcam, lime, occlusion")
            }
            if !out.contains(m) { out.append(m) }
        }
        guard !out.isEmpty else { throw ValidationError("--methods: give at least one of gradcam, lime, occlusion") }
        return out
    }

    func settings() throws -> ExplainSettings {
        var s = ExplainSettings()
        s.target = TargetChoice(parsing: target)
        guard let tap = Tap(rawValue: layer) else {
            throw ValidationError("--layer \(layer): use one of \(Tap.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        s.gradcam.layer = tap
        s.lime.samples = limeSamples
        do {
            s.lime.regions = try RegionScheme(parsing: limeRegions)
            s.baseline = try Baseline(parsing: baseline)
        } catch { throw ValidationError("\(error)") }
        s.lime.kernelWidth = limeKernelWidth
        s.lime.ridge = limeRidge
        (s.occlusion.windowFrames, s.occlusion.windowBands) = try Self.pair(occlusionWindow, "--occlusion-window")
        (s.occlusion.strideFrames, s.occlusion.strideBands) = try Self.pair(occlusionStride, "--occlusion-stride")
        s.batch = batch
        s.audible.smoothingSeconds = smoothing
        s.audible.threshold = audibleThreshold
        s.audio = !noAudio
        s.faithfulnessEnabled = !noFaithfulness
        (s.faithfulness.cellFrames, s.faithfulness.cellBands) = try Self.pair(faithfulnessCells, "--faithfulness-cells")
        s.faithfulness.steps = faithfulnessSteps
        s.faithfulness.randomOrders = randomOrders
        s.seed = seed
        return s
    }

    func validate() throws {
        if let r = ranks, r < 1 { throw ValidationError("--ranks must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if MatmulPrecision(rawValue: precision) == nil { throw ValidationError("--precision must be fp32 or bf16 (got \(precision))") }
        if summary {
            guard out != nil || runPath != nil else { throw ValidationError("--summary needs --out OUT (or --run RUN for RUN/explanations)") }
            return
        }
        guard let run = runPath else { throw ValidationError("give --run RUN, a run directory written by `ser train`") }
        guard FileManager.default.fileExists(atPath: RunDirectory(run).config) else {
            throw ValidationError("--run \(run): no config.json there; is it a run directory written by `ser train`?")
        }
        let sources = [!files.isEmpty, split != nil, manifest != nil].filter { $0 }.count
        guard sources == 1 else {
            throw ValidationError("say which files to explain with exactly one of --files, --split test|train|all or --manifest CSV")
        }
        if let split, !["test", "train", "all"].contains(split) { throw ValidationError("--split must be test, train or all (got \(split))") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        _ = try parsedMethods()
        _ = try settings()
        if limeSamples < 2 { throw ValidationError("--lime-samples must be at least 2") }
        if !(limeKernelWidth > 0) { throw ValidationError("--lime-kernel-width must be positive") }
        if !(limeRidge >= 0) { throw ValidationError("--lime-ridge must be 0 or more") }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if !(smoothing > 0) { throw ValidationError("--smoothing must be positive (seconds)") }
        if !(audibleThreshold >= 0 && audibleThreshold < 1) { throw ValidationError("--audible-threshold must be in [0, 1)") }
        if faithfulnessSteps < 1 { throw ValidationError("--faithfulness-steps must be at least 1") }
        if randomOrders < 1 { throw ValidationError("--random-orders must be at least 1") }
        for (flag, path) in [("--checkpoint", checkpoint), ("--features", features), ("--manifest", manifest)] {
            if let path, !FileManager.default.fileExists(atPath: path) { throw ValidationError("\(flag) \(path): no such file or directory") }
        }
    }

    // MARK: - Set-up (every rank)

    struct Setup {
        var model: TrainedModel
        var store: FeatureStore?
        var settings: ExplainSettings
        var methods: [ExplainMethod]
        var out: String
        var fingerprint: String
    }

    func prepare() throws -> Setup {
        let run = runPath!
        let model = try TrainedModel.load(run, checkpoint: checkpoint)
        let s = try settings()
        let methods = try parsedMethods()
        if methods.contains(.gradcam), !model.net.taps.contains(s.gradcam.layer) {
            throw ExplainError("--layer \(layer): \(model.net.config.architecture.rawValue) has no such layer (it has \(model.net.taps.map(\.rawValue).joined(separator: ", ")))")
        }
        if case .named(let name) = s.target, !model.labels.contains(name), !model.labels.contains(Emotion.canonicalName(name) ?? "") {
            throw ExplainError("--target \(name): the run's classes are \(model.labels.joined(separator: ", ")) (or use predicted / label)")
        }
        let fe = model.frontEnd
        if let p = s.lime.regions.problem(frames: fe.patchFrames, bands: fe.melBands) { throw ExplainError("--lime-regions: \(p)") }
        if s.occlusion.windowFrames > fe.patchFrames || s.occlusion.windowBands > fe.melBands {
            throw ExplainError("--occlusion-window \(occlusionWindow) is larger than the \(fe.patchFrames)×\(fe.melBands) patch")
        }
        // The store: needed for --files/--split; for --manifest only for its GDS settings (if present).
        var storePath = features ?? model.config.options.features
        // `ser train --features store --out run` records the path as typed: relative to where it
        // ran, usually beside the run directory.
        if features == nil, !storePath.hasPrefix("/"), !FileManager.default.fileExists(atPath: storePath) {
            let beside = ((RunDirectory(run).path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(storePath)
            if FileManager.default.fileExists(atPath: beside + "/" + StoreManifest.fileName) { storePath = beside }
        }
        var store: FeatureStore?
        if manifest == nil || FileManager.default.fileExists(atPath: storePath) {
            guard FileManager.default.fileExists(atPath: storePath) else {
                throw FileError("the run's feature store \(storePath) is not there (moved, or a path relative to where `ser train` ran?); give it with --features STORE")
            }
            let st = try FeatureStore.open(storePath)
            try model.checkCompatible(with: st)
            // Another store of the same front end and classes is fine (--features), but the run's
            // own store, found again, must be the same store (file ids must mean the same files).
            if features == nil, StoreIdentity(st).fingerprint != model.config.store.fingerprint {
                throw ExplainError("\(storePath) is not the store run \(run) was trained on (it has \(StoreIdentity(st).fingerprint), the run \(model.config.store.fingerprint)); give the right one with --features STORE")
            }
            store = st
        }
        return Setup(model: model, store: store, settings: s, methods: methods,
                     out: out ?? RunDirectory(run).path + "/explanations", fingerprint: Explainer.modelFingerprint(model.net))
    }

    /// The files to explain (rank 0).
    func items(_ setup: Setup) throws -> [ExplainItem] {
        var list: [ExplainItem]
        if let manifest {
            list = try ExplainItems.manifest(manifest)
        } else if let split {
            let kind = SplitKind(rawValue: setup.model.config.options.split) ?? .random
            list = try ExplainItems.split(setup.store!, which: split, kind: kind)
        } else {
            let names = files.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
            list = try ExplainItems.named(setup.store!, names)
        }
        if let limit { list = Array(list.prefix(limit)) }
        guard !list.isEmpty else { throw ExplainError("no file to explain (the selection is empty)") }
        return list
    }

    // MARK: - Run

    func run() throws {
        let console = Console(quiet: quiet)
        try LocalLauncher.relaunchIfNeeded(ranks: ranks, console: console)
        let world = try Runtime.start(threads: threads, precision: MatmulPrecision(rawValue: precision)!)
        if summary {
            if world.isRoot { try printSummary(console: console) }
            world.finalize()
            return
        }
        // Every rank loads the model and opens the store; any rank's problem stops every rank
        // before work starts, with rank 0 reporting it.
        var setup: Setup?
        var problem = ""
        do { setup = try prepare() } catch { problem = "\(error)" }
        var planned: TaskQueue?
        if world.isRoot, let s = setup {
            do { planned = try plan(s, world: world, console: console) } catch { problem = "\(error)"; setup = nil }
        }
        if world.allreduce(Int64(setup == nil ? 1 : 0), .sum) > 0 {
            let messages = world.gatherStrings(problem)
            world.finalize()
            guard world.isRoot else { throw ExitCode(1) }
            let first = messages?.enumerated().first { !$0.element.isEmpty }
            let rank = first.map { world.size > 1 && $0.offset != 0 ? "rank \($0.offset): " : "" } ?? ""
            throw ExplainError(rank + (first?.element ?? "set-up failed"))
        }
        let s = setup!
        let classifier = NetworkClassifier(s.model.net, maxBatch: s.settings.batch)
        let explainer = Explainer(classifier: classifier, labels: s.model.labels, frontEnd: s.model.frontEnd, settings: s.settings,
                                  store: s.store, modelFingerprint: s.fingerprint)
        explainer.rank = world.rank

        let farm = Farm<ExplainTask>(world: world, coordinatorComputes: coordinatorComputes)
        let progress = world.isRoot ? Progress("explaining", total: planned!.todo.count, unit: "tasks", console: console) : nil
        let writer = planned.map { OutputWriter(out: $0.out) }
        var failed = 0
        // Rank 0: books the results whose files the writer has put on disk.
        func book() {
            guard let queue = planned, let writer else { return }
            for r in writer.collect() {
                queue.record(r, todoIndex: r.index)
                if !r.ok {
                    failed += 1
                    let task = queue.tasks[queue.todo[r.index]]
                    console.warn("\(task.method.rawValue) \(task.item.relativePath): \(r.reason ?? "failed")")
                }
                progress?.advance(extra: failed > 0 ? "\(failed) failed" : "")
            }
            do {
                if let text = try queue.indexText(force: false) { writer.submit(text: text, to: queue.indexPath, warn: { console.warn($0) }) }
            } catch { console.warn("\(queue.indexPath): \(error)") }
        }
        try farm.run(tasks: planned?.pendingTasks ?? [], work: { task, _, poll in
            let t0 = DispatchTime.now().uptimeNanoseconds
            func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
            do {
                let (_, outputs) = try explainer.run(task.method, task.item, poll: poll)
                return FarmResult(index: 0, ok: true, reason: nil, seconds: elapsed(), rank: world.rank, files: outputs)
            } catch {
                return FarmResult(index: 0, ok: false, reason: "\(error)", seconds: elapsed(), rank: world.rank, files: [])
            }
        }, done: { result in
            writer?.submit(result)
            book()
        })
        if let queue = planned {
            writer?.drain()
            book()
            writer?.drain()
            try queue.writeIndex()
            progress?.finish("explained \(queue.todo.count - failed) of \(queue.todo.count) tasks in \(formatDuration(progress?.elapsed ?? 0)) (\(queue.reused) reused, \(failed) failed) → \(queue.out)")
            let (summary, profile) = try ExplainReport.write(out: queue.out, index: queue.index, warn: { console.warn($0) })
            print(summary.table)
            if profile != nil { console.info("frequency profiles: \(queue.out)/profiles.json, profiles.svg") }
        }
        world.finalize()
        if failed > 0 { throw ExitCode(3) }
    }

    /// Rank 0: the task list, with the tasks a previous run finished.
    func plan(_ s: Setup, world: Communicator, console: Console) throws -> TaskQueue {
        let list = try items(s)
        try AtomicFile.makeDirectory(s.out)
        let fe = s.model.frontEnd
        let template = ExplainIndex(run: s.model.run.path, methods: s.methods.map(\.rawValue), labels: s.model.labels,
                                    bandCentersHz: fe.melBandCentersHz, layer: s.settings.gradcam.layer.rawValue, ranks: world.size, tasks: [])
        let queue = TaskQueue(items: list, methods: s.methods, out: s.out,
                              fingerprint: { s.settings.fingerprint(for: $0, model: s.fingerprint, frontEnd: fe) }, template: template)
        try queue.writeIndex()
        console.info("explaining \(list.count) file(s) × \(s.methods.count) method(s) = \(queue.tasks.count) tasks on \(world.size) rank(s) × \(ComputeThreads.current) thread(s): \(queue.reused) already done, \(queue.todo.count) to do (model \(s.model.net.config.architecture.rawValue), BLAS \(BLASKernel.current))")
        return queue
    }

    func printSummary(console: Console) throws {
        let dir = out ?? RunDirectory(runPath!).path + "/explanations"
        let index = try ExplainIndex.read(dir + "/index.json")
        let (summary, _) = try ExplainReport.write(out: dir, index: index, warn: { console.warn($0) })
        let pending = index.tasks.filter { $0.status == "pending" }.count
        if pending > 0 { console.warn("\(pending) task(s) of \(dir) are pending: rerun the `ser explain` command to finish them") }
        print(summary.table)
    }
}
