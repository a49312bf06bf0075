import ArgumentParser
import Foundation
import Shared
import Worker

/// Tasks per second of each explanation method through the farm, and the inference throughput
/// they rest on. Run it with 1 rank and under `mpirun -np 2` for the farm's scaling.
struct BenchExplain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Measure the explainer farm: tasks per second per method, and batched inference.",
        discussion: """
        Rank 0 synthesises a small corpus (`--files` utterances of `--duration` s) and a feature store \
        in --workdir; every rank builds fusion-v1 at --width with seeded random weights (the speed \
        does not depend on the weights). Then: (1) inference, batches of --batch patches on every \
        rank at once, in segments per second summed over the ranks (the target on 2 cores is ≥ 280); \
        (2) each method's tasks (every file) through the same farm and Explainer as `ser explain`, \
        with faithfulness curves and Grad-CAM's WAVs, outputs written by rank 0 to the work folder; \
        (3) LIME with one perturbation per forward call, as Captum's Lime evaluates them by default, \
        on rank 0 alone against the batched rate. Compare one rank with `mpirun -np 2` for scaling.
        """
    )

    @Option(help: "Channel multiplier of fusion-v1 (1 = the published network).")
    var width: Double = 1

    @Option(help: "Utterances to explain per method.")
    var files: Int = 8

    @Option(help: "Seconds per utterance.")
    var duration: Double = 2

    @Option(help: "Methods to time, comma-separated.")
    var methods: String = "gradcam,lime,occlusion"

    @Option(name: .customLong("lime-samples"), help: "LIME samples per patch.")
    var limeSamples: Int = 1000

    @Option(help: "Patches per forward pass.")
    var batch: Int = 128

    @Option(name: .customLong("inference-batches"), help: "Timed inference batches per rank.")
    var inferenceBatches: Int = 6

    @Option(name: .customLong("reference-samples"), help: "LIME samples for the one-per-call reference (0: skip it).")
    var referenceSamples: Int = 128

    @Flag(name: .customLong("no-faithfulness"), help: "Time the methods without the deletion/insertion curves.")
    var noFaithfulness = false

    @Option(help: "Folder for the corpus, store and outputs (a subfolder is made and removed).")
    var workdir: String = NSTemporaryDirectory()

    @Option(help: "Compute threads per rank (default: the rank's share of the cores).")
    var threads: Int?

    @Option(help: "Matrix products in fp32 (OpenBLAS) or bf16 (float32 accumulation; AMX tiles or AVX512-BF16).")
    var precision: String = "fp32"

    @Flag(help: "Print the results as JSON.")
    var json = false

    func validate() throws {
        if MatmulPrecision(rawValue: precision) == nil { throw ValidationError("--precision must be fp32 or bf16 (got \(precision))") }
        if !(width > 0 && width <= 4) { throw ValidationError("--width must be in (0, 4]") }
        if files < 1 { throw ValidationError("--files must be at least 1") }
        if !(duration >= 1) { throw ValidationError("--duration must be at least 1 s") }
        if batch < 1 || inferenceBatches < 1 { throw ValidationError("--batch and --inference-batches must be at least 1") }
        if limeSamples < 2 { throw ValidationError("--lime-samples must be at least 2") }
        if referenceSamples < 0 { throw ValidationError("--reference-samples must be 0 or more") }
        for m in methods.split(separator: ",") where ExplainMethod(rawValue: String(m)) == nil {
            throw ValidationError("--methods: unknown method '\(m)'")
        }
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    func run() throws {
        let world = try Runtime.start(threads: threads, precision: MatmulPrecision(rawValue: precision)!)
        let console = Console(quiet: !world.isRoot || json)
        // The corpus and store, made by rank 0 with a world of one, then shared by path.
        var dirBytes: [UInt8] = []
        if world.isRoot {
            let dir = (workdir as NSString).appendingPathComponent("ser-bench-explain-\(getpid())")
            try? FileManager.default.removeItem(atPath: dir)
            try AtomicFile.makeDirectory(dir)
            let quiet = Console(quiet: true)
            try SynthCorpus.run(SynthSettings(out: dir + "/corpus", filesPerClass: (files + 3) / 4, speakers: 2, duration: duration, seed: 7),
                                world: .single(), console: quiet)
            _ = try PreprocessJob.run(PreprocessSettings(corpora: [CorpusSpec(kind: .synth, path: dir + "/corpus")], out: dir + "/store", shards: 1),
                                      world: .single(), console: quiet)
            dirBytes = Array(dir.utf8)
        }
        let dir = String(decoding: world.broadcast(bytes: dirBytes), as: UTF8.self)
        defer { if world.isRoot { try? FileManager.default.removeItem(atPath: dir) } }
        let store = try FeatureStore.open(dir + "/store")
        var config = ModelConfig(architecture: .fusionV1, classes: store.labels.count, width: width)
        config.frames = store.frontEnd.patchFrames
        config.bands = store.frontEnd.melBands
        let net = try Network<Float>(config: config)
        var rng = SeededGenerator(seed: 1, stream: "bench/explain")
        net.params.initialize(using: &rng)
        // Moving statistics of a fresh network: mean 0, variance 1 (as after initialisation in training).
        for spec in net.layout.state where spec.name.hasSuffix("moving_variance") {
            net.params.value(spec.name).update(repeating: 1, count: spec.count)
        }
        let classifier = NetworkClassifier(net, maxBatch: batch)
        var settings = ExplainSettings()
        settings.lime.samples = limeSamples
        settings.batch = batch
        settings.faithfulnessEnabled = !noFaithfulness
        let explainer = Explainer(classifier: classifier, labels: store.labels, frontEnd: store.frontEnd, settings: settings,
                                  store: store, modelFingerprint: "bench")
        explainer.rank = world.rank
        let items = Array(ExplainItems.all(store).prefix(files))
        var results: [String: Any] = ["machine": CPUInfo.modelName, "ranks": world.size, "threadsPerRank": ComputeThreads.current,
                                      "width": width, "parameters": net.layout.trainableCount, "files": items.count,
                                      "patchesPerFile": Double(items.reduce(0) { $0 + store.files[$1.fileID!].segments.count }) / Double(items.count)]
        console.info("fusion-v1 width \(width) (\(net.layout.trainableCount) parameters), \(world.size) rank(s) × \(ComputeThreads.current) thread(s), \(items.count) files of \(duration) s, \(MatmulPrecision.current == .bf16 ? "bf16 matrix products (\(MatmulPrecision.kernel))" : "fp32 matrix products"), BLAS \(BLASKernel.current)")

        // (1) Inference on every rank at once.
        let per = store.valuesPerSegment
        var x = [Float](repeating: 0, count: batch * per)
        var xr = SeededGenerator(seed: 2, stream: "bench/explain/x/\(world.rank)")
        for i in 0..<x.count { x[i] = Float(-4 + 2 * xr.normal()) }
        var probs = [Double](repeating: 0, count: batch * config.classes)
        try x.withUnsafeBufferPointer { xb in
            try probs.withUnsafeMutableBufferPointer { pb in try classifier.probabilities(xb.baseAddress!, count: batch, into: pb.baseAddress!) }
        }
        world.barrier()
        let t0 = Self.now()
        for _ in 0..<inferenceBatches {
            try x.withUnsafeBufferPointer { xb in
                try probs.withUnsafeMutableBufferPointer { pb in try classifier.probabilities(xb.baseAddress!, count: batch, into: pb.baseAddress!) }
            }
        }
        let mine = Self.now() - t0
        let slowest = world.allreduce(mine, .max)
        let inference = Double(world.size * batch * inferenceBatches) / slowest
        results["inferenceSegmentsPerSecond"] = inference
        console.info(String(format: "inference: %.0f segments/s (batches of %d, %d rank(s)); target ≥ 280 on 2 cores → %@",
                            inference, batch, world.size, inference >= 280 ? "met" : "NOT met"))

        // (2) The methods through the farm.
        var perMethod: [[String: Any]] = []
        for name in methods.split(separator: ",").map(String.init) {
            let method = ExplainMethod(rawValue: name)!
            let tasks = items.map { ExplainTask(method: method, item: $0) }
            let farm = Farm<ExplainTask>(world: world)
            let writer = OutputWriter(out: dir + "/out")
            var forward = 0, failed = 0
            world.barrier()
            let start = Self.now()
            try farm.run(tasks: world.isRoot ? tasks : [], work: { task, _, poll in
                let t = Self.now()
                do {
                    let (_, out) = try explainer.run(task.method, task.item, poll: poll)
                    return FarmResult(index: 0, ok: true, reason: nil, seconds: Self.now() - t, rank: world.rank, files: out)
                } catch {
                    return FarmResult(index: 0, ok: false, reason: "\(error)", seconds: Self.now() - t, rank: world.rank, files: [])
                }
            }, done: { r in
                guard r.ok else { failed += 1; console.warn("bench task failed: \(r.reason ?? "")"); return }
                if let json = r.files.last, let record = try? JSONDecoder().decode(TaskRecord.self, from: json.data) {
                    forward += record.timing.forwardPasses
                }
                writer.submit(r)
            })
            writer.drain()
            world.barrier()
            let seconds = Self.now() - start
            if world.isRoot {
                let rate = Double(tasks.count - failed) / seconds
                perMethod.append(["method": name, "tasks": tasks.count, "failed": failed, "seconds": seconds, "tasksPerSecond": rate,
                                  "forwardPassesPerSecond": Double(forward) / seconds])
                console.info(String(format: "%-9@ %3d tasks in %7.2f s: %7.3f tasks/s, %6.0f forward passes/s", name as NSString,
                                    tasks.count, seconds, rate, Double(forward) / seconds))
            }
        }
        results["methods"] = perMethod

        // (3) One perturbation per forward call (Captum's default) against the batched rate.
        if referenceSamples > 0, world.isRoot, let item = items.first {
            let patches = try explainer.prepare(item)
            var s = settings.lime
            s.samples = referenceSamples
            func timeLIME(_ maxBatch: Int) throws -> Double {
                let c = NetworkClassifier(net, maxBatch: maxBatch)
                var r = SeededGenerator(seed: 3)
                let t = Self.now()
                _ = try patches.patches.withUnsafeBufferPointer { p in
                    try LIME.explain(c, patches: p.baseAddress!, count: 1, target: 0, settings: s, baseline: .mean, rng: &r)
                }
                return Double(referenceSamples) / (Self.now() - t)
            }
            let one = try timeLIME(1), batched = try timeLIME(batch)
            results["limeOnePerCallSegmentsPerSecond"] = one
            results["limeBatchedSegmentsPerSecond"] = batched
            console.info(String(format: "LIME, %d perturbations of one patch on rank 0: one per forward call (Captum's default) %.0f segments/s, batches of %d %.0f segments/s: %.1f×",
                                referenceSamples, one, batch, batched, batched / one))
        }
        if json, world.isRoot {
            let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        world.finalize()
    }
}
