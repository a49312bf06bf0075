import ArgumentParser
import Foundation
import Shared
import Worker

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train fusion-v1 (or a single-branch baseline, or a model family: ae, dae, resnet-se) on a feature store.",
        discussion: """
        Adam (lr 0.01, β 0.9/0.999, batch 128, 20 epochs by default) on the store's training split; \
        evaluation on the held-out files after every epoch (segment level and file level, where a \
        file's prediction is the mean of its segments' probabilities).

        Run alone (one process, all cores), with --ranks N (ser starts N MPI ranks on this \
        machine), or under mpirun/srun on a cluster. The global batch stays --batch whatever the \
        number of ranks. The default fast mode lets MPI combine the ranks' gradients (results \
        differ by float32 rounding between rank counts); --mode deterministic reduces in a fixed \
        order, so that any number of ranks, and a resumed run, give bitwise the same weights \
        (about 25 % slower: the batch is cut into one small chunk per shard).

        Output in --out: config.json, metrics.jsonl, checkpoints/, weights.safetensors, \
        evaluation.json. After a crash or preemption, `ser train --resume RUN` continues from the \
        newest valid checkpoint (with any number of ranks).

        --model ae, dae and resnet-se train the other two systems of the source papers on the same \
        stores and machinery (docs/FAMILIES.md): an (denoising) autoencoder on one feature vector \
        per utterance with a classifier on its latent code, and a ResNet-SE emotion verifier with \
        classical classifiers on its emotion vectors. Their options are listed under "Model families".
        """
    )

    @Option(help: "Feature store written by `ser preprocess`.")
    var features: String?

    @Option(help: "Run directory to create (or continue with --resume).")
    var out: String?

    @Option(help: "Continue the run in this directory from its newest valid checkpoint (settings come from its config.json).")
    var resume: String?

    @Option(help: "Network: fusion-v1, vggish-only or yamnet-only; or a model family: ae, dae, resnet-se (docs/FAMILIES.md).")
    var model: String = "fusion-v1"

    @Option(help: "Channel multiplier for every layer (1 = the published networks).")
    var width: Double = 1

    @Option(help: "Epochs (passes over the training segments).")
    var epochs: Int?

    @Option(help: "Global batch size (split between the ranks; default 128, ae/dae 64).")
    var batch: Int?

    @Option(name: .customLong("learning-rate"), help: "Adam learning rate (default 0.01; ae, dae and resnet-se 0.001).")
    var learningRate: Double?

    @Option(help: "Adam β1.")
    var beta1: Double = 0.9

    @Option(help: "Adam β2.")
    var beta2: Double = 0.999

    @Option(help: "Adam ε.")
    var epsilon: Double = 1e-8

    @Option(name: .customLong("warmup-steps"), help: "Raise the learning rate linearly over this many first steps (0: constant, as the paper).")
    var warmupSteps: Int = 0

    @Option(name: .customLong("bn-momentum"), help: "Momentum of batch norm's moving statistics (YAMNet branch).")
    var bnMomentum: Double = 0.9

    @Option(help: "Seed for initialisation and data order.")
    var seed: UInt64 = 1

    @Option(help: "Which split of the store: random (85:15 files, stratified) or speaker (held-out speakers).")
    var split: String = "random"

    @Flag(name: .customLong("all-segments"), help: "Train and evaluate on every segment, ignoring Gaussian data selection.")
    var allSegments = false

    @Option(help: "fast (MPI's own reductions, one chunk per thread) or deterministic (fixed-order reductions: bitwise the same weights for any rank count, ~25 % slower).")
    var mode: String?

    @Option(name: .customLong("yamnet-weights"), help: "Pretrained YAMNet weights (safetensors), e.g. shared/weights/yamnet/yamnet.safetensors.")
    var yamnetWeights: String?

    @Flag(name: .customLong("freeze-yamnet"), help: "Keep YAMNet's weights and batch-norm statistics as loaded.")
    var freezeYAMNet = false

    @Option(name: .customLong("vggish-weights"), help: "VGGish weights (safetensors, names vggish/conv1/kernel …).")
    var vggishWeights: String?

    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every this many steps (and at each epoch end).")
    var checkpointEvery: Int?

    @Option(name: .customLong("keep-checkpoints"), help: "Checkpoints to keep besides the best one.")
    var keepCheckpoints: Int?

    @Option(name: .customLong("max-steps"), help: "Stop after this many steps in total.")
    var maxSteps: Int?

    @Option(help: "Abort the job if no step completes for this many seconds (hung peer, dead node).")
    var watchdog: Double?

    @Option(name: .customLong("checksum-every"), help: "Compare a checksum of every rank's parameters every this many steps (0: never).")
    var checksumEvery: Int?

    @Option(help: "Start this many MPI ranks on this machine (needs Open MPI).")
    var ranks: Int?

    @Option(help: "Compute threads per rank (default: the rank's share of the cores).")
    var threads: Int?

    @Option(help: "Matrix products in fp32 (OpenBLAS) or bf16 (float32 accumulation; AMX tiles on Intel Sapphire Rapids or later, AVX512-BF16 on AMD Zen 4 or later).")
    var precision: String?

    @Flag(help: "Print only warnings and the final summary.")
    var quiet = false

    // Fault injection for the tests of the divergence check.
    @Option(name: .customLong("inject-divergence"), help: ArgumentHelp("RANK@STEP: nudge one rank's parameters after a step.", visibility: .hidden))
    var injectDivergence: String?

    @OptionGroup(title: "Model families (--model ae, dae, resnet-se)")
    var family: FamilyFlags

    func validate() throws {
        if resume == nil {
            guard features != nil else { throw ValidationError("give --features STORE (or --resume RUN to continue a run)") }
            guard out != nil else { throw ValidationError("give --out RUN, the run directory to create") }
        }
        if ModelConfig.Architecture(rawValue: model) == nil && FamilyKind(rawValue: model) == nil {
            throw ValidationError("--model must be one of \((ModelConfig.Architecture.allCases.map(\.rawValue) + FamilyKind.allCases.map(\.rawValue)).joined(separator: ", ")) (got \(model))")
        }
        try validateFamilyFlags()
        if let mode, TrainOptions.Mode(rawValue: mode) == nil { throw ValidationError("--mode must be deterministic or fast (got \(mode))") }
        if !["random", "speaker"].contains(split) { throw ValidationError("--split must be random or speaker (got \(split))") }
        if let b = batch, b < 1 { throw ValidationError("--batch must be at least 1") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1") }
        if let lr = learningRate, !(lr > 0) { throw ValidationError("--learning-rate must be positive") }
        if !(width > 0 && width <= 4) { throw ValidationError("--width must be in (0, 4]") }
        if let r = ranks, r < 1 { throw ValidationError("--ranks must be at least 1") }
        if warmupSteps < 0 { throw ValidationError("--warmup-steps must be 0 or more") }
        if !(bnMomentum >= 0 && bnMomentum < 1) { throw ValidationError("--bn-momentum must be in [0, 1)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let precision, MatmulPrecision(rawValue: precision) == nil { throw ValidationError("--precision must be fp32 or bf16 (got \(precision))") }
        for (flag, path) in [("--yamnet-weights", yamnetWeights), ("--vggish-weights", vggishWeights), ("--features", features)] {
            if let path, !FileManager.default.fileExists(atPath: path) { throw ValidationError("\(flag) \(path): no such file or directory") }
        }
    }

    /// The options of this invocation: a fresh run, or the saved ones of --resume RUN with the
    /// settings that may change between attempts (epochs, checkpointing, limits) overridden.
    func resolveOptions() throws -> TrainOptions {
        if let resume, FileManager.default.fileExists(atPath: RunDirectory(resume).config) {
            var o = try RunConfig.load(RunDirectory(resume)).options
            o.out = resume
            if let epochs { o.epochs = epochs }
            if let checkpointEvery { o.checkpointEvery = checkpointEvery }
            if let keepCheckpoints { o.keepCheckpoints = keepCheckpoints }
            // A step limit belongs to one invocation, not to the run.
            o.maxSteps = maxSteps
            if let watchdog { o.watchdogSeconds = watchdog }
            if let checksumEvery { o.checksumEvery = checksumEvery }
            if let precision { o.precision = MatmulPrecision(rawValue: precision) }
            return o
        }
        guard let features else {
            throw ValidationError("\(resume ?? "?") has no config.json yet; give --features and --out to start the run")
        }
        var o = TrainOptions(features: features, out: out ?? resume!)
        o.model = ModelConfig(architecture: ModelConfig.Architecture(rawValue: model)!, classes: 2, width: width, freezeYAMNet: freezeYAMNet)
        o.model.bnMomentum = bnMomentum
        o.warmupSteps = warmupSteps
        o.epochs = epochs ?? 20
        o.batch = batch ?? 128
        o.adam = Adam<Float>.Settings(learningRate: learningRate ?? 0.01, beta1: beta1, beta2: beta2, epsilon: epsilon)
        o.seed = seed
        o.split = split
        o.allSegments = allSegments
        o.mode = mode.flatMap(TrainOptions.Mode.init(rawValue:)) ?? .fast
        o.yamnetWeights = yamnetWeights.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        o.vggishWeights = vggishWeights.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        if let checkpointEvery { o.checkpointEvery = checkpointEvery }
        if let keepCheckpoints { o.keepCheckpoints = keepCheckpoints }
        o.maxSteps = maxSteps
        if let watchdog { o.watchdogSeconds = watchdog }
        if let checksumEvery { o.checksumEvery = checksumEvery }
        o.precision = precision.flatMap(MatmulPrecision.init(rawValue:))
        o.injectDivergence = injectDivergence.map { $0.split(separator: "@").compactMap { Int($0) } }
        return o
    }

    func run() throws {
        if let kind = familyToTrain() { return try runFamily(kind) }
        let console = Console(quiet: quiet)
        try LocalLauncher.relaunchIfNeeded(ranks: ranks, console: console)
        let world = Runtime.start(threads: threads)
        let rankConsole = world.isRoot ? console : Console(quiet: true)
        do {
            let options = try resolveOptions()
            try MatmulPrecision.select(options.precision ?? .fp32)
            let trainer = try Trainer(options: options, world: world, console: rankConsole)
            if resume != nil {
                if try !trainer.resume(), world.isRoot { console.info("no checkpoint in \(options.out) yet: starting from the beginning") }
            } else if world.isRoot, !Checkpoint.list(RunDirectory(options.out).checkpoints).isEmpty {
                throw TrainingError("\(options.out) already holds checkpoints; continue it with `ser train --resume \(options.out)` or choose another --out")
            }
            if world.isRoot {
                console.info("training \(trainer.net.config.architecture.rawValue) (\(trainer.net.layout.trainableCount) parameters) on \(options.features): \(world.size) rank(s) × \(ComputeThreads.current) thread(s), \(options.mode.rawValue) mode, \(MatmulPrecision.current.rawValue) matrix products, BLAS \(BLASKernel.current)")
            }
            try trainer.train()
            if world.isRoot {
                if let e = trainer.lastEvaluation {
                    console.info("file level, test split:\n" + e.files.table + "\n" + e.files.confusionTable)
                }
                console.info("weights: \(RunDirectory(options.out).weights)")
            }
        } catch {
            if world.size > 1 { world.abort("\(error)", code: 1) }
            throw error
        }
        world.finalize()
    }
}
