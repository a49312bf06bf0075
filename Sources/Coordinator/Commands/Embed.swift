import ArgumentParser
import Foundation
import Shared
import Worker

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Latent codes (ae, dae) or emotion vectors (resnet-se) of every utterance, projected to 2-D and scored.",
        discussion: """
        Maps every file of the chosen split through a run of `ser train --model ae|dae|resnet-se` \
        and writes to --out: embeddings.csv (one row per utterance: store, file, path, corpus, \
        speaker, emotion, split, vector), projection.csv (PCA and t-SNE coordinates, same order), \
        pca-emotion.svg, pca-corpus.svg, tsne-emotion.svg, tsne-corpus.svg (coloured by emotion and \
        by corpus) and silhouette.json: silhouette scores by emotion and by corpus in the full \
        vector space, the PCA plane and the t-SNE plane. A high score by corpus and a low one by \
        emotion means the corpus, not the emotion, shapes the space.

        Stores: the run's training store by default; give --features A --features B to embed two \
        corpora (each must have the run's front end and classes). --split test|train uses each \
        store's own split of the run's kind; all takes every file.

        Runs alone, with --ranks N, or under mpirun: each rank computes the vectors of its shards' \
        files, rank 0 writes the outputs.
        """
    )

    @Argument(help: ArgumentHelp("Run directory written by `ser train --model ae|dae|resnet-se`.", valueName: "run"))
    var runDirectory: String

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Which files: test, train or all.")
    var split: String = "test"

    @Option(name: .customLong("features"), help: "A store to embed (repeatable; default: the run's training store).")
    var stores: [String] = []

    @Flag(name: .customLong("no-tsne"), help: "Skip t-SNE (PCA only).")
    var noTSNE = false

    @Option(help: "t-SNE perplexity (at most (utterances − 1)/3 is used).")
    var perplexity: Double = 30

    @Option(name: .customLong("tsne-iterations"), help: "t-SNE iterations (the first 250 with early exaggeration).")
    var tsneIterations: Int = 1000

    @Option(help: "Start this many MPI ranks on this machine (needs Open MPI).")
    var ranks: Int?

    @Option(help: "Compute threads per rank (default: the rank's share of the cores).")
    var threads: Int?

    @Flag(help: "Print only warnings and the final summary.")
    var quiet = false

    func validate() throws {
        guard ["test", "train", "all"].contains(split) else { throw ValidationError("--split must be test, train or all (got \(split))") }
        guard FileManager.default.fileExists(atPath: runDirectory) else { throw ValidationError("\(runDirectory): no such run directory") }
        for s in stores where !FileManager.default.fileExists(atPath: s) { throw ValidationError("--features \(s): no such directory") }
        if !(perplexity > 0) { throw ValidationError("--perplexity must be positive") }
        if tsneIterations < 1 { throw ValidationError("--tsne-iterations must be at least 1") }
        if let r = ranks, r < 1 { throw ValidationError("--ranks must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let console = Console(quiet: quiet)
        try LocalLauncher.relaunchIfNeeded(ranks: ranks, console: console)
        let world = Runtime.start(threads: threads)
        do {
            var o = EmbedOptions(run: runDirectory, out: out)
            o.split = split
            o.stores = stores
            o.tsne = !noTSNE
            o.perplexity = perplexity
            o.tsneIterations = tsneIterations
            if let s = try EmbedJob.run(o, world: world, console: world.isRoot ? console : Console(quiet: true)) {
                func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "undefined" }
                var lines = ["\(s.utterances) \(s.vector)s (\(s.dimensions) dimensions) of \(s.family.rawValue), \(s.split) split, corpora: \(s.corpora.joined(separator: ", "))",
                             "silhouette      by emotion   by corpus"]
                for space in ["latent", "pca", "tsne"] {
                    guard let sc = s.silhouette[space] else { continue }
                    lines.append(space.padding(toLength: 16, withPad: " ", startingAt: 0) + f(sc.emotion).padding(toLength: 13, withPad: " ", startingAt: 0) + f(sc.corpus))
                }
                lines += s.notes.map { "note: " + $0 }
                lines.append("written to \(out)")
                print(lines.joined(separator: "\n"))
            }
        } catch {
            if world.size > 1 { world.abort("\(error)", code: 1) }
            throw error
        }
        world.finalize()
    }
}
