import Foundation
import Shared

/// What `ser embed` does: the vector of every utterance of one or more stores under a family
/// run's model, 2-D projections coloured by emotion and by corpus, and silhouette scores that say
/// whether emotion or corpus shapes the space.
public struct EmbedOptions: Sendable {
    public var run: String
    public var out: String
    /// test, train or all (each store's own split of the run's kind).
    public var split = "test"
    /// Stores to embed; empty: the run's training store.
    public var stores: [String] = []
    public var tsne = true
    public var perplexity = 30.0
    public var tsneIterations = 1000

    public init(run: String, out: String) {
        self.run = run
        self.out = out
    }
}

/// DIR/silhouette.json.
public struct EmbedSummary: Codable, Sendable {
    public var run: String
    public var family: FamilyKind
    public var vector: String
    public var dimensions: Int
    public var utterances: Int
    public var split: String
    public var stores: [String]
    public var emotions: [String]
    public var corpora: [String]
    /// Per space ("latent", "pca", "tsne"): silhouette by emotion and by corpus (nil: undefined,
    /// fewer than two groups).
    public var silhouette: [String: Scores]
    public var pcaExplainedVariance: [Double]
    public var tsneDivergence: Double?
    public var notes: [String]

    public struct Scores: Codable, Sendable {
        public var emotion: Double?
        public var corpus: Double?
    }
}

public enum EmbedJob {
    struct Item {
        var store: Int
        var file: Int
        var split: String
        var corpus: String
        var emotion: Int
        var vector: [Double]
    }

    /// Collective; rank 0 writes DIR and returns the summary (nil on other ranks).
    public static func run(_ o: EmbedOptions, world: Communicator, console: Console) throws -> EmbedSummary? {
        let enc = try FamilyEncoder.load(o.run)
        let paths = o.stores.isEmpty ? [enc.config.options.features] : o.stores
        guard let kind = SplitKind(rawValue: enc.config.options.split) else {
            throw FileError("\(enc.run.config): unknown split '\(enc.config.options.split)'")
        }
        var items: [Item] = []
        var specs: [(CorpusSpec, Int, Int)] = []   // (corpus, store, corpus index)
        var stores: [FeatureStore] = []
        for (si, path) in paths.enumerated() {
            let store = try FeatureStore.open(path)
            try enc.checkCompatible(with: store)
            stores.append(store)
            let s = store.split(kind)
            let testSet = Set(s.test)
            let files: [Int]
            switch o.split {
            case "train": files = s.train
            case "test": files = s.test
            default: files = Array(store.files.indices)
            }
            for (ci, c) in store.manifest.corpora.enumerated() { specs.append((c, si, ci)) }
            let t0 = Date()
            let vectors = try enc.vectors(store: store, files: files, world: world)
            if world.isRoot { console.info("\(files.count) \(enc.vectorName)s of \(path) in \(formatDuration(Date().timeIntervalSince(t0)))") }
            for (f, v) in zip(files, vectors) {
                items.append(Item(store: si, file: f, split: testSet.contains(f) ? "test" : "train", corpus: "",
                                  emotion: store.files[f].labelIndex, vector: v))
            }
        }
        guard world.isRoot else { return nil }
        // Corpus names: the corpus kind, with the folder name when two folders share a kind.
        var byKind: [CorpusKind: Set<String>] = [:]
        for (c, _, _) in specs { byKind[c.kind, default: []].insert(c.path) }
        func corpusName(_ store: Int, _ index: Int) -> String {
            let c = specs.first { $0.1 == store && $0.2 == index }!.0
            return (byKind[c.kind]?.count ?? 1) > 1 ? "\(c.kind.rawValue):\((c.path as NSString).lastPathComponent)" : c.kind.rawValue
        }
        for k in items.indices { items[k].corpus = corpusName(items[k].store, stores[items[k].store].files[items[k].file].corpus) }
        guard items.count >= 2 else { throw FileError("only \(items.count) utterance(s) in the \(o.split) split of \(paths.joined(separator: ", ")); choose --split all") }

        try AtomicFile.makeDirectory(o.out)
        let labels = enc.config.labels
        let corpora = Array(Set(items.map(\.corpus))).sorted()
        let corpusIndex = Dictionary(uniqueKeysWithValues: corpora.enumerated().map { ($1, $0) })
        let vectors = items.map(\.vector)
        let emotion = items.map(\.emotion), corpus = items.map { corpusIndex[$0.corpus]! }
        var notes: [String] = []
        if corpora.count < 2 {
            notes.append("one corpus only: the silhouette by corpus is undefined; embed stores of two corpora (--features A --features B) to compare")
        }

        var csv = "store,file,path,corpus,speaker,emotion,split," + (0..<enc.dimension).map { "v\($0)" }.joined(separator: ",") + "\n"
        for it in items {
            let f = stores[it.store].files[it.file]
            csv += "\(it.store),\(it.file),\(csvField(f.relativePath)),\(it.corpus),\(csvField(f.speaker)),\(labels[it.emotion]),\(it.split),"
            csv += it.vector.map { String(format: "%.7g", $0) }.joined(separator: ",") + "\n"
        }
        try AtomicFile.write(csv, to: o.out + "/embeddings.csv")

        var silhouette: [String: EmbedSummary.Scores] = [:]
        func scores(_ x: [[Double]]) -> EmbedSummary.Scores {
            .init(emotion: Silhouette.compute(x, labels: emotion)?.mean, corpus: Silhouette.compute(x, labels: corpus)?.mean)
        }
        silhouette["latent"] = scores(vectors)
        let pca = try PCA.fit(vectors, components: 2)
        let pcaPoints = vectors.map(pca.project)
        silhouette["pca"] = scores(pcaPoints)
        let what = "\(enc.family.rawValue) \(enc.vectorName)s, \(o.split) split"
        let ratio = pca.explainedRatio
        try plots(pcaPoints, name: "pca", title: String(format: "PCA of %@ (%.0f%% + %.0f%% of variance)", what, 100 * ratio[0], 100 * ratio[1]),
                  axes: ("PC 1", "PC 2"), emotion: emotion, labels: labels, corpus: corpus, corpora: corpora, items: items, dir: o.out)
        var projection = "pca_x,pca_y"
        var tsnePoints: [[Double]]?, divergence: Double?
        if o.tsne && items.count >= 4 {
            let t0 = Date()
            let t = try TSNE(perplexity: o.perplexity, iterations: o.tsneIterations).embed(vectors)
            tsnePoints = t.points
            divergence = t.divergence
            silhouette["tsne"] = scores(t.points)
            console.info(String(format: "t-SNE of %d points in %@ (KL %.3f)", items.count, formatDuration(Date().timeIntervalSince(t0)), t.divergence))
            try plots(t.points, name: "tsne", title: "t-SNE of \(what) (perplexity \(String(format: "%g", min(o.perplexity, max(1, Double(items.count - 1) / 3)))))",
                      axes: ("t-SNE 1", "t-SNE 2"), emotion: emotion, labels: labels, corpus: corpus, corpora: corpora, items: items, dir: o.out)
            projection += ",tsne_x,tsne_y"
        } else if o.tsne {
            notes.append("t-SNE skipped: fewer than 4 utterances")
        }
        projection += "\n"
        for i in items.indices {
            var row = [pcaPoints[i][0], pcaPoints[i][1]]
            if let t = tsnePoints { row += t[i] }
            projection += row.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n"
        }
        try AtomicFile.write(projection, to: o.out + "/projection.csv")
        let summary = EmbedSummary(run: o.run, family: enc.family, vector: enc.vectorName, dimensions: enc.dimension, utterances: items.count,
                                   split: o.split, stores: paths, emotions: labels, corpora: corpora, silhouette: silhouette,
                                   pcaExplainedVariance: ratio, tsneDivergence: divergence, notes: notes)
        try AtomicFile.write(try jsonText(summary), to: o.out + "/silhouette.json")
        return summary
    }

    static func plots(_ points: [[Double]], name: String, title: String, axes: (String, String), emotion: [Int], labels: [String],
                      corpus: [Int], corpora: [String], items: [Item], dir: String) throws {
        func scatter(_ groups: [Int], _ names: [String], _ by: String) -> String {
            let pts = points.indices.map { i in
                ScatterPoint(x: points[i][0], y: points[i][1], group: groups[i], label: "\(items[i].corpus) \(labels[items[i].emotion])")
            }
            return Chart.scatter(pts, groups: names, title: title + ", by " + by, xLabel: axes.0, yLabel: axes.1, width: 760, height: 560)
        }
        try AtomicFile.write(scatter(emotion, labels, "emotion"), to: "\(dir)/\(name)-emotion.svg")
        try AtomicFile.write(scatter(corpus, corpora, "corpus"), to: "\(dir)/\(name)-corpus.svg")
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
