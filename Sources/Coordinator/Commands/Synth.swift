import ArgumentParser
import Foundation
import Shared
import Worker

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic corpus of emotional speech (deterministic from the seed).",
        discussion: """
        Writes DIR/<speaker>/<label>/<n>.wav for the classes angry, happy, neutral and sad, which \
        differ in pitch level and movement, loudness, syllable rate and spectral tilt, with \
        per-speaker variation and noise. DIR/manifest.csv (path,label,speaker) lists the files and \
        DIR/cues.csv (path,t0,t1,f0,f1) gives, per file, the time–frequency boxes (seconds, Hz) where \
        the class-telling cues lie. Read it with `ser preprocess --corpus synth:DIR`. Under mpirun the \
        ranks split the files; the output is identical for any number of ranks.
        """
    )

    @Option(help: ArgumentHelp("Output directory.", valueName: "dir")) var out: String
    @Option(help: "Files per class (dealt round-robin to the speakers).") var filesPerClass: Int = 40
    @Option(help: "Number of speakers.") var speakers: Int = 6
    @Option(help: "Seconds per file.") var duration: Double = 2.0
    @Option(help: "Random seed (the same seed gives the same corpus, bit for bit).") var seed: UInt64 = 1
    @Option(help: "Sample rate in Hz.") var sampleRate: Int = 16000
    @Option(help: "Audio format: wav or flac (16-bit PCM).") var format: String = "wav"
    @Option(help: "Compute threads per rank (default: the rank's share of the node's cores).") var threads: Int?
    @Flag(help: "Print only warnings.") var quiet = false

    func validate() throws {
        if filesPerClass < 1 { throw ValidationError("--files-per-class must be at least 1 (got \(filesPerClass))") }
        if speakers < 1 { throw ValidationError("--speakers must be at least 1 (got \(speakers))") }
        if !(duration >= 0.3 && duration <= 3600) { throw ValidationError("--duration must be between 0.3 and 3600 seconds (got \(duration))") }
        if sampleRate < 8000 || sampleRate > 192_000 { throw ValidationError("--sample-rate must be between 8000 and 192000 Hz (got \(sampleRate))") }
        if !["wav", "flac"].contains(format) { throw ValidationError("--format must be wav or flac (got '\(format)')") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
    }

    func run() throws {
        let world = Runtime.start(threads: threads)
        let console = Console(quiet: quiet || !world.isRoot)
        let s = SynthSettings(out: URL(fileURLWithPath: out).standardizedFileURL.path, filesPerClass: filesPerClass, speakers: speakers,
                              duration: duration, seed: seed, sampleRate: sampleRate, format: format)
        let t0 = Date()
        do { try SynthCorpus.run(s, world: world, console: console) } catch { world.abort("synth: \(error)") }
        if world.isRoot {
            let n = filesPerClass * SynthCorpus.classes.count
            let dt = Date().timeIntervalSince(t0)
            print(String(format: "synth: %d files (%.1f s of audio each) in %@ — %.2f s, %.0f× real time on %d rank(s)",
                         n, duration, s.out as NSString, dt, Double(n) * duration / dt, world.size))
        }
        world.finalize()
    }
}
