import ArgumentParser
import Foundation
import Shared
import Worker

struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn corpora of audio files into a sharded, GDS-filtered store of log-mel segments.",
        discussion: """
        Run as one process or as `mpirun -np N ser preprocess …`: the ranks split the shards \
        (rank r takes shards r, r+N, …) and rank 0 writes DIR/manifest.json last. The store is the \
        same, byte for byte, for any N.

        Corpora (--corpus KIND:PATH, repeatable, read in the order given): emodb, ravdess, cremad, \
        tess, casia (folder layouts of the public corpora), csv (a CSV file with header \
        path,label,speaker; relative paths are relative to the CSV's folder) and synth (a folder \
        written by `ser synth`). Labels are mapped to canonical emotions; only those in --labels are \
        kept (others are counted as dropped).

        Audio: any format libsndfile reads, mixed to mono, resampled to the preset's rate \
        (libsamplerate). Short files: a file whose audio (before any padding) is shorter than \
        --min-duration is skipped as "too short". Otherwise the preset's padding rule decides: \
        yamnet pads every clip with zeros to a whole number of patch hops (so every file gives at \
        least one patch and no frame is dropped); paper48k pads only clips shorter than one patch, \
        to exactly one patch, and drops frames after the last full patch. Unreadable, corrupt, \
        empty and silent files are skipped with a message naming the file and the reason; the \
        job goes on and the manifest lists them.

        Interrupted? Rerun the same command: finished shards that pass their checksums are kept.
        """
    )

    @Option(name: .customLong("corpus"), help: ArgumentHelp("A corpus as KIND:PATH (repeatable).", valueName: "kind:path"))
    var corpora: [String] = []

    @Option(help: ArgumentHelp("Output directory of the store.", valueName: "dir"))
    var out: String

    @Option(help: "Front-end preset: yamnet (16 kHz, what pretrained YAMNet expects) or paper48k (48 kHz, the paper's tables).")
    var preset: String = "yamnet"

    @Option(help: "Override: sample rate in Hz.") var sampleRate: Int?
    @Option(help: "Override: window length in samples.") var window: Int?
    @Option(help: "Override: hop length in samples.") var hop: Int?
    @Option(help: "Override: FFT length (≥ window).") var fft: Int?
    @Option(help: "Override: number of mel bands.") var melBands: Int?
    @Option(help: "Override: lowest mel frequency in Hz.") var fmin: Double?
    @Option(help: "Override: highest mel frequency in Hz.") var fmax: Double?
    @Option(help: "Override: offset inside the log, ln(mel + offset).") var logOffset: Double?
    @Option(help: "Override: tail padding rule, yamnet or drop-tail.") var padding: String?
    @Option(help: "Override: frames per segment (default 96).") var patchFrames: Int?
    @Option(help: "Frames between the starts of consecutive segments (default 48).") var patchHop: Int?

    @Option(help: "Classes, in label-index order (canonical names: angry, happy, neutral, sad, fear, disgust, surprise, boredom, calm).")
    var labels: String = Emotion.paperFour.joined(separator: ",")

    @Option(help: "Gaussian data selection: on, or off (every segment kept; scores still stored).")
    var gds: String = "on"

    @Option(help: "GDS threshold T: keep segments whose z-scored correlation sum is > T.")
    var gdsThreshold: Double = -1.0

    @Option(help: "Number of shards (files are dealt to shards by a seeded shuffle).")
    var shards: Int = 16

    @Option(help: "Segments per compressed block (a reader decompresses one block per access).")
    var blockSegments: Int = 64

    @Option(help: "Skip files whose audio is shorter than this many seconds (before padding).")
    var minDuration: Double = 0.5

    @Option(help: "Seed for the shard assignment and the splits.")
    var seed: UInt64 = 1

    @Option(help: "Test fraction of both splits (the paper: 0.15).")
    var testFraction: Double = 0.15

    @Option(help: ArgumentHelp("Held-out speakers of the speaker split, comma-separated (default: chosen with the seed).", valueName: "a,b,…"))
    var testSpeakers: String?

    @Option(help: "Resampler quality: best (default; sinc, 97 dB), medium or fastest.")
    var resampler: String = "best"

    @Option(help: "Compute threads per rank (default: the rank's share of the node's cores).")
    var threads: Int?

    @Flag(help: "Print only warnings and the final summary.")
    var quiet = false

    func settings() throws -> PreprocessSettings {
        guard var fe = FrontEndConfig.preset(preset) else { throw ValidationError("--preset must be yamnet or paper48k (got '\(preset)')") }
        if let v = sampleRate { fe.sampleRate = v }
        if let v = window { fe.windowLength = v }
        if let v = hop { fe.hopLength = v }
        if let v = fft { fe.fftLength = v }
        if let v = melBands { fe.melBands = v }
        if let v = fmin { fe.fMin = v }
        if let v = fmax { fe.fMax = v }
        if let v = logOffset { fe.logOffset = v }
        if let v = patchFrames { fe.patchFrames = v }
        if let v = patchHop { fe.patchHop = v }
        if let p = padding {
            switch p.lowercased() {
            case "yamnet": fe.padding = .yamnet
            case "drop-tail", "droptail": fe.padding = .dropTail
            default: throw ValidationError("--padding must be yamnet or drop-tail (got '\(p)')")
            }
        }
        if let problem = fe.problem { throw ValidationError("front end: \(problem)") }
        let specs: [CorpusSpec]
        do { specs = try corpora.map(CorpusSpec.init(parsing:)) } catch { throw ValidationError("\(error)") }
        let labelSet: LabelSet
        do { labelSet = try LabelSet(labels.split(separator: ",").map(String.init)) } catch { throw ValidationError("\(error)") }
        guard let quality = ResamplerQuality(rawValue: resampler) else { throw ValidationError("--resampler must be best, medium or fastest (got '\(resampler)')") }
        let gdsOn: Bool
        switch gds.lowercased() {
        case "on": gdsOn = true
        case "off": gdsOn = false
        default: throw ValidationError("--gds must be on or off (got '\(gds)')")
        }
        let speakers = testSpeakers.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        return PreprocessSettings(corpora: specs, out: URL(fileURLWithPath: out).standardizedFileURL.path, frontEnd: fe, labels: labelSet,
                                  gds: GDSSettings(enabled: gdsOn, threshold: gdsThreshold), shards: shards, blockSegments: blockSegments,
                                  minDuration: minDuration, seed: seed, testFraction: testFraction, testSpeakers: speakers, resampler: quality)
    }

    func validate() throws {
        if corpora.isEmpty { throw ValidationError("give at least one --corpus KIND:PATH (kinds: \(CorpusKind.allCases.map(\.rawValue).joined(separator: ", ")))") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
        if shards < 1 || shards > 99_999 { throw ValidationError("--shards must be between 1 and 99999 (got \(shards))") }
        if blockSegments < 1 { throw ValidationError("--block-segments must be at least 1 (got \(blockSegments))") }
        if !(minDuration >= 0) { throw ValidationError("--min-duration must be ≥ 0 seconds (got \(minDuration))") }
        if !(testFraction > 0 && testFraction < 1) { throw ValidationError("--test-fraction must be between 0 and 1 (got \(testFraction))") }
        if !gdsThreshold.isFinite { throw ValidationError("--gds-threshold must be a finite number") }
        _ = try settings()
    }

    func run() throws {
        let world = Runtime.start(threads: threads)
        let console = Console(quiet: quiet || !world.isRoot)
        let s = try settings()
        let summary: PreprocessJob.Summary?
        do {
            summary = try PreprocessJob.run(s, world: world, console: console, program: "ser \(serVersion)")
        } catch {
            world.abort("preprocess: \(error)")
        }
        if let summary {
            let m = summary.manifest
            if m.files.isEmpty {
                world.abort("preprocess: no usable file in the corpora given (\(m.skipped.count) skipped, \(m.droppedLabels.values.reduce(0, +)) outside --labels); see the warnings above")
            }
            print("store      \(s.out)")
            print("files      \(m.files.count) (\(m.skipped.count) skipped, \(m.droppedLabels.values.reduce(0, +)) outside the label set)")
            print(String(format: "segments   %d before GDS, %d kept, %d removed (%.1f %%), %d constant",
                         m.gdsTotals.segmentsBefore, m.gdsTotals.segmentsAfter, m.gdsTotals.segmentsRemoved, 100 * m.fractionRemoved,
                         m.gdsTotals.constantSegments))
            for (i, name) in m.labels.enumerated() {
                let c = m.perClass[name] ?? .init()
                print("  \(i) \(name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(c.files) files, \(c.segmentsAfter)/\(c.segmentsBefore) segments kept")
            }
            print("splits     random \(m.splits.random.train.count)/\(m.splits.random.test.count) files; speaker \(m.splits.speaker.train.count)/\(m.splits.speaker.test.count) (held out: \((m.splits.speaker.testSpeakers ?? []).joined(separator: ", ")))")
            let rate = summary.audioSecondsComputed / max(summary.seconds, 1e-9)
            print(String(format: "time       %.2f s on %d rank(s): %.1f s of audio decoded, %.0f× real time (%.0f× per rank)%@",
                         summary.seconds, summary.ranks, summary.audioSecondsComputed, rate, rate / Double(summary.ranks),
                         summary.reusedShards > 0 ? " — \(summary.reusedShards) shard(s) reused from a previous run" as NSString : "" as NSString))
        }
        world.finalize()
    }
}

/// The version recorded in the stores this build writes (manifest `createdBy.program`).
let serVersion = "0.1.0-dev"
