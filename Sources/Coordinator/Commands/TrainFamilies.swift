import ArgumentParser
import Foundation
import Shared
import Worker

/// The options of `ser train` that only the model families use (docs/FAMILIES.md).
struct FamilyFlags: ParsableArguments {
    @Option(help: "ae/dae: dimensions of the latent code (default 16).")
    var latent: Int?

    @Option(help: "ae/dae: units of the hidden layer on each side of the latent code (default 128).")
    var hidden: Int?

    @Option(name: .customLong("classifier-hidden"), help: "ae/dae: hidden units of the classifier on the latent code, 0 = a linear softmax (default 32).")
    var classifierHidden: Int?

    @Option(name: .customLong("recon-weight"), help: "ae/dae: weight of the reconstruction loss (default 1).")
    var reconWeight: Double?

    @Option(name: .customLong("class-weight"), help: "ae/dae: weight of the classification loss (default 1).")
    var classWeight: Double?

    @Option(help: "dae: standard deviation of the Gaussian input corruption, in units of the normalised features (default 0.3).")
    var noise: Double?

    @Option(name: .customLong("importance-repeats"), help: "ae/dae: permutations per feature for the importance table, 0 = none (default 5).")
    var importanceRepeats: Int?

    @Option(help: "resnet-se: residual blocks in each of the four stages (default 2,2,2,2).")
    var blocks: String?

    @Option(help: "resnet-se: dimensions of the emotion vector (default 128).")
    var embedding: Int?

    @Option(help: "resnet-se: verifier loss, angproto (angular prototypical) or softmax-angproto (default angproto).")
    var loss: String?

    @Option(name: .customLong("episode-classes"), help: "resnet-se: emotions per episode (N), 0 = every class (default 0).")
    var episodeClasses: Int?

    @Option(name: .customLong("episode-utterances"), help: "resnet-se: utterances per emotion in an episode (M: one query, M − 1 for the prototype; default 5).")
    var episodeUtterances: Int?

    @Option(name: .customLong("eer-threshold"), help: "resnet-se: accept the model only if its held-out equal error rate is below this (default 0.5); a rejected run keeps its files and exits with status 3.")
    var eerThreshold: Double?

    @Option(name: .customLong("test-features"), help: "ae/dae/resnet-se: a store of another corpus whose every file is also scored (cross-corpus evaluation).")
    var testFeatures: String?

    @Option(help: "ae/dae/resnet-se: also evaluate on degraded held-out audio: telephone (band-limited to 300–3400 Hz) or none.")
    var degrade: String?

    @Option(help: "ae/dae/resnet-se: with the degraded evaluation, add white noise at this SNR in dB (alone or after --degrade telephone).")
    var snr: Double?

    /// (flag, given) for every option, to reject those the chosen model does not use.
    var autoencoderOnly: [(String, Bool)] {
        [("--latent", latent != nil), ("--hidden", hidden != nil), ("--classifier-hidden", classifierHidden != nil),
         ("--recon-weight", reconWeight != nil), ("--class-weight", classWeight != nil), ("--noise", noise != nil),
         ("--importance-repeats", importanceRepeats != nil)]
    }

    var resnetOnly: [(String, Bool)] {
        [("--blocks", blocks != nil), ("--embedding", embedding != nil), ("--loss", loss != nil), ("--episode-classes", episodeClasses != nil),
         ("--episode-utterances", episodeUtterances != nil), ("--eer-threshold", eerThreshold != nil)]
    }

    var anyFamily: [(String, Bool)] {
        [("--test-features", testFeatures != nil), ("--degrade", degrade != nil), ("--snr", snr != nil)]
    }

    func parsedBlocks() throws -> [Int]? {
        guard let blocks else { return nil }
        let parts = blocks.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--blocks needs four positive numbers separated by commas, e.g. 2,2,2,2 (got \(blocks))")
        }
        return parts.map { $0! }
    }

    func degradation() throws -> Degradation? {
        let band: ClosedRange<Double>?
        switch degrade ?? "none" {
        case "none": band = nil
        case "telephone": band = Degradation.telephoneBand
        default: throw ValidationError("--degrade must be telephone or none (got \(degrade!))")
        }
        return band == nil && snr == nil ? nil : Degradation(band: band, snr: snr)
    }
}

extension Train {
    /// The family this invocation trains: --model ae|dae|resnet-se, or --resume of a family run.
    func familyToTrain() -> FamilyKind? {
        if let resume, FileManager.default.fileExists(atPath: RunDirectory(resume).config) {
            return FamilyRunConfig.family(ofRun: resume)
        }
        return FamilyKind(rawValue: model)
    }

    /// Rejects options that do not apply to the chosen model, and bad family values.
    func validateFamilyFlags() throws {
        let f = family
        guard let kind = FamilyKind(rawValue: model) else {
            if let flag = (f.autoencoderOnly + f.resnetOnly + f.anyFamily).first(where: { $0.1 }) {
                throw ValidationError("\(flag.0) applies to the model families (--model ae, dae or resnet-se), not to \(model)")
            }
            return
        }
        for (flag, given) in [("--yamnet-weights", yamnetWeights != nil), ("--vggish-weights", vggishWeights != nil),
                              ("--freeze-yamnet", freezeYAMNet), ("--warmup-steps", warmupSteps != 0),
                              ("--checkpoint-every", checkpointEvery != nil), ("--mode", mode != nil)] where given {
            throw ValidationError("\(flag) applies to fusion-v1 and its baselines, not to --model \(kind.rawValue)")
        }
        if kind.isAutoencoder {
            if let flag = f.resnetOnly.first(where: { $0.1 }) { throw ValidationError("\(flag.0) applies to --model resnet-se, not \(kind.rawValue)") }
            if kind == .ae, f.noise != nil { throw ValidationError("--noise applies to --model dae (the denoising autoencoder)") }
            if width != 1 { throw ValidationError("--width applies to fusion-v1 and resnet-se; size the autoencoder with --hidden and --latent") }
            if let l = f.latent, l < 1 { throw ValidationError("--latent must be at least 1") }
            if let h = f.hidden, h < 1 { throw ValidationError("--hidden must be at least 1") }
            if let k = f.classifierHidden, k < 0 { throw ValidationError("--classifier-hidden must be 0 or more") }
            if let w = f.reconWeight, !(w >= 0) { throw ValidationError("--recon-weight must be 0 or more") }
            if let w = f.classWeight, !(w >= 0) { throw ValidationError("--class-weight must be 0 or more") }
            if let n = f.noise, !(n >= 0) { throw ValidationError("--noise must be 0 or more") }
            if let r = f.importanceRepeats, r < 0 { throw ValidationError("--importance-repeats must be 0 or more") }
        } else {
            if let flag = f.autoencoderOnly.first(where: { $0.1 }) { throw ValidationError("\(flag.0) applies to --model ae/dae, not resnet-se") }
            _ = try f.parsedBlocks()
            if let e = f.embedding, e < 2 { throw ValidationError("--embedding must be at least 2") }
            if let l = f.loss, VerifierLoss(rawValue: l) == nil { throw ValidationError("--loss must be angproto or softmax-angproto (got \(l))") }
            if let n = f.episodeClasses, n != 0 && n < 2 { throw ValidationError("--episode-classes must be 0 (every class) or at least 2") }
            if let m = f.episodeUtterances, m < 2 { throw ValidationError("--episode-utterances must be at least 2 (a query and a prototype)") }
            if let t = f.eerThreshold, !(t > 0 && t <= 1) { throw ValidationError("--eer-threshold must be in (0, 1]") }
        }
        _ = try f.degradation()
        if let path = f.testFeatures, !FileManager.default.fileExists(atPath: path) {
            throw ValidationError("--test-features \(path): no such file or directory")
        }
    }

    /// The options of a family run: a fresh one, or the saved ones of --resume RUN (with the
    /// settings that may change between attempts overridden).
    func familyOptions(_ kind: FamilyKind) throws -> FamilyTrainOptions {
        if let resume, FileManager.default.fileExists(atPath: RunDirectory(resume).config) {
            var o = try FamilyRunConfig.load(RunDirectory(resume)).options
            o.out = resume
            if let epochs { o.epochs = epochs }
            if let keepCheckpoints { o.keepCheckpoints = keepCheckpoints }
            // A step limit belongs to the invocation that gives it: a resumed run goes on to the end.
            o.maxSteps = maxSteps
            if let watchdog { o.watchdogSeconds = watchdog }
            return o
        }
        guard let features else {
            throw ValidationError("\(resume ?? "?") has no config.json yet; give --features and --out to start the run")
        }
        let f = family
        var o = FamilyTrainOptions(family: kind, features: features, out: out ?? resume!, epochs: epochs ?? (kind.isAutoencoder ? 200 : 30))
        o.testFeatures = f.testFeatures.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        o.batch = batch ?? 64
        o.adam = Adam<Float>.Settings(learningRate: learningRate ?? 0.001, beta1: beta1, beta2: beta2, epsilon: epsilon)
        o.seed = seed
        o.split = split
        o.allSegments = allSegments
        o.maxSteps = maxSteps
        if let keepCheckpoints { o.keepCheckpoints = keepCheckpoints }
        if let watchdog { o.watchdogSeconds = watchdog }
        if let v = f.latent { o.autoencoder.latent = v }
        if let v = f.hidden { o.autoencoder.hidden = v }
        if let v = f.classifierHidden { o.autoencoder.classifierHidden = v }
        if let v = f.reconWeight { o.autoencoder.reconstructionWeight = v }
        if let v = f.classWeight { o.autoencoder.classificationWeight = v }
        if let v = f.noise { o.autoencoder.noise = v }
        if let v = f.importanceRepeats { o.importanceRepeats = v }
        o.resnet.width = width
        o.resnet.bnMomentum = bnMomentum
        if let v = try f.parsedBlocks() { o.resnet.blocks = v }
        if let v = f.embedding { o.resnet.embedding = v }
        if let v = f.loss { o.resnet.loss = VerifierLoss(rawValue: v)! }
        if let v = f.episodeClasses { o.resnet.episodeClasses = v }
        if let v = f.episodeUtterances { o.resnet.episodeUtterances = v }
        if let v = f.eerThreshold { o.resnet.eerThreshold = v }
        o.degradation = try f.degradation()
        return o
    }

    /// `ser train` for a model family: same launch, run directory and MPI machinery as fusion.
    func runFamily(_ kind: FamilyKind) throws {
        let console = Console(quiet: quiet)
        try LocalLauncher.relaunchIfNeeded(ranks: ranks, console: console)
        let world = Runtime.start(threads: threads)
        let rankConsole = world.isRoot ? console : Console(quiet: true)
        var accepted = true
        var options: FamilyTrainOptions?
        do {
            let o = try familyOptions(kind)
            options = o
            if resume == nil, world.isRoot, !Checkpoint.list(RunDirectory(o.out).checkpoints).isEmpty {
                throw TrainingError("\(o.out) already holds checkpoints; continue it with `ser train --resume \(o.out)` or choose another --out")
            }
            let evaluation: FamilyEvaluation?
            if kind.isAutoencoder {
                let trainer = try AutoencoderTrainer(options: o, world: world, console: rankConsole)
                if world.isRoot {
                    console.info("training \(kind.rawValue) (\(trainer.model.layout.trainableCount) parameters, \(trainer.featureNames.count) features → latent \(o.autoencoder.latent)) on \(o.features): \(world.size) rank(s) × \(ComputeThreads.current) thread(s)")
                }
                try trainer.train(resume: resume != nil)
                evaluation = trainer.evaluation
            } else {
                let trainer = try ResNetSETrainer(options: o, world: world, console: rankConsole)
                if world.isRoot {
                    console.info("training resnet-se (\(trainer.model.layout.trainableCount) parameters, \(trainer.model.forwardFlopsPerSample / 1_000_000) MFLOP per patch, \(o.resnet.loss.rawValue) loss) on \(o.features): \(world.size) rank(s) × \(ComputeThreads.current) thread(s), BLAS \(BLASKernel.current)")
                }
                accepted = try trainer.train(resume: resume != nil)
                evaluation = trainer.evaluation
            }
            // The results go to standard output (also with --quiet), progress to standard error.
            if world.isRoot, let e = evaluation { print(Train.describe(e)) }
            if world.isRoot { console.info("run: \(o.out) (evaluation.json, weights.safetensors)") }
        } catch {
            if world.size > 1 { world.abort("\(error)", code: 1) }
            throw error
        }
        world.finalize()
        if !accepted, let o = options {
            FileHandle.standardError.write(Data("model rejected: its held-out equal error rate is not below --eer-threshold \(o.resnet.eerThreshold); its weights and evaluation are kept in \(o.out)\n".utf8))
            throw ExitCode(3)
        }
    }

    static func describe(_ e: FamilyEvaluation) -> String {
        var lines = ["held-out files (\(e.split) split) — \(e.summary)", e.files.table, e.files.confusionTable]
        for (name, r) in e.classifiers.sorted(by: { $0.key < $1.key }) where e.classifiers.count > 1 {
            lines.append(String(format: "  %@: WA %.4f UA %.4f macro-F1 %.4f", name, r.weightedAccuracy, r.unweightedAccuracy, r.macroF1))
        }
        for (title, c) in [("cross-corpus", e.crossCorpus), ("degraded", e.degraded)] {
            guard let c else { continue }
            var s = String(format: "%@ (%@): WA %.4f UA %.4f macro-F1 %.4f", title, c.name, c.files.weightedAccuracy, c.files.unweightedAccuracy, c.files.macroF1)
            if let v = c.verification { s += String(format: ", EER %.4f", v.eer) }
            if let m = c.reconstructionMSE { s += String(format: ", reconstruction MSE %.4f", m) }
            lines.append(s)
        }
        if let g = e.groupImportance {
            lines.append("feature groups by drop in UA when permuted: " + g.map { String(format: "%@ %.3f", $0.feature, $0.drop) }.joined(separator: ", "))
        }
        if let top = e.importance?.prefix(5) {
            lines.append("top features: " + top.map { String(format: "%@ %.3f", $0.feature, $0.drop) }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
