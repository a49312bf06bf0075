import Foundation
import Shared
import Worker

/// One section of the page: its anchor id (fixed: tests and links rely on them), title and body.
struct ReportSection {
    let id: String
    let title: String
    var body: String
}

/// Builds the report's sections from the runs and the explanations. Every section is always
/// present; when its inputs are missing it says what is missing and which command produces it.
struct ReportBuilder {
    /// Section ids in page order.
    static let sectionIDs = ["configuration", "corpus", "training", "evaluation", "comparison", "explanations", "profiles", "faithfulness"]

    /// Largest file embedded as a data: URI (a larger one is named, not embedded).
    static let maxEmbeddedBytes = 8 << 20

    let runs: [ReportRun]
    let explanations: ReportExplanations
    /// Files shown in the gallery (0: none).
    let galleryFiles: Int
    var svg = InlineSVG()
    /// Problems with the inputs, for the console as well as the page.
    var notes: [String] = []
    /// Bytes of embedded images and audio (for the summary line).
    var embeddedBytes = 0

    var main: ReportRun { runs[0] }

    init(runs: [ReportRun], explanations: ReportExplanations, galleryFiles: Int) {
        precondition(!runs.isEmpty, "a report needs a run")
        self.runs = runs
        self.explanations = explanations
        self.galleryFiles = galleryFiles
    }

    mutating func sections() -> [ReportSection] {
        [configuration(), corpus(), training(), evaluation(), comparison(), explanationGallery(), profiles(), faithfulness()]
    }

    mutating func note(_ text: String) -> String {
        notes.append(text)
        return HTML.notice(text)
    }

    // MARK: - Configuration

    mutating func configuration() -> ReportSection {
        var s = ReportSection(id: "configuration", title: "Configuration", body: "")
        let r = main
        if let p = r.configProblem {
            s.body = note(p) + HTML.missing("the run's configuration", fix: "ser train --features STORE --out \(r.path)")
            return s
        }
        let o = r.options
        let adam = o["adam"] as? [String: Any] ?? [:]
        var facts: [(String, String)] = [
            ("run", r.path),
            ("kind", r.family.map { "model family \($0)" } ?? "network (ser train --model \(r.modelName))"),
            ("model", r.modelName),
            ("parameters", (r.config["parameters"] as? Int).map(String.init) ?? "–"),
            ("classes", r.labels.joined(separator: ", ")),
            ("feature store", (o["features"] as? String ?? "–") + (r.storePath.map { $0 == o["features"] as? String ? "" : " (found at \($0))" } ?? "")),
            ("split", r.split),
            ("segments", r.gds),
            ("epochs", "\(ReportRun.double(o["epochs"]).map(ReportRun.trim) ?? "–") set, \(r.epochs.count) recorded"),
            ("batch", ReportRun.double(o["batch"]).map(ReportRun.trim) ?? "–"),
            ("learning rate", ReportRun.double(adam["learningRate"]).map { String(format: "%g", $0) } ?? "–"),
            ("seed", ReportRun.double(o["seed"]).map(ReportRun.trim) ?? "–"),
        ]
        if let mode = o["mode"] as? String { facts.append(("mode", mode)) }
        if let w = ReportRun.double(o["warmupSteps"]), w > 0 { facts.append(("warm-up steps", ReportRun.trim(w))) }
        facts.append(("MPI", "\(r.ranks.map(String.init) ?? "?") rank(s) × \(r.threadsPerRank.map(String.init) ?? "?") thread(s)"))
        if let t = r.trainingSeconds { facts.append(("training time", formatDuration(t) + " (Σ train_seconds)")) }
        if let h = r.config["configHash"] as? String { facts.append(("configuration hash", h)) }
        if let fe = r.store?.frontEnd ?? (r.config["frontEnd"] as? [String: Any]).flatMap(ReportBuilder.frontEnd) {
            facts.append(("front end", ReportBuilder.describe(fe)))
        }
        s.body = HTML.facts(facts)
        s.body += "<details><summary>config.json, every field</summary>"
            + HTML.table(["field", "value"], ReportBuilder.flatten(r.configJSON).map { [HTML.code($0.0), HTML.escape($0.1)] }, cls: "compact")
            + "</details>"
        return s
    }

    static func frontEnd(_ dict: [String: Any]) -> FrontEndConfig? {
        guard let data = try? JSONSerialization.data(withJSONObject: dict) else { return nil }
        return try? JSONDecoder().decode(FrontEndConfig.self, from: data)
    }

    static func describe(_ fe: FrontEndConfig) -> String {
        "\(fe.sampleRate) Hz, window \(fe.windowLength), hop \(fe.hopLength), FFT \(fe.fftLength), \(fe.melBands) mel bands "
            + "\(Int(fe.fMin))–\(Int(fe.fMax)) Hz, ln(mel + \(fe.logOffset)), segments \(fe.patchFrames) frames every \(fe.patchHop)"
    }

    /// JSON as key paths and values, in key order ("options.model.width" → "0.25").
    static func flatten(_ value: JSONValue, prefix: String = "") -> [(String, String)] {
        switch value {
        case .object(let d):
            if d.isEmpty { return [(prefix, "{}")] }
            return d.keys.sorted().flatMap { flatten(d[$0]!, prefix: prefix.isEmpty ? $0 : prefix + "." + $0) }
        case .array(let a):
            if a.allSatisfy(\.isScalar) {
                let text = a.map(\.text).joined(separator: ", ")
                return [(prefix, text.count > 400 ? "\(a.count) values: " + text.prefix(400) + " …" : "[\(text)]")]
            }
            return a.enumerated().flatMap { flatten($1, prefix: "\(prefix)[\($0)]") }
        default:
            return [(prefix, value.text)]
        }
    }

    // MARK: - Corpus and GDS

    mutating func corpus() -> ReportSection {
        var s = ReportSection(id: "corpus", title: "Corpus and Gaussian data selection", body: "")
        guard let m = main.store else {
            s.body = note(main.storeProblem ?? "the feature store is unknown")
                + HTML.missing("corpus and GDS statistics (they come from the store's manifest.json)",
                               fix: "ser report \(main.path) --features STORE …")
            return s
        }
        let t = m.gdsTotals
        s.body = HTML.facts([
            ("store", main.storePath ?? "–"),
            ("corpora", m.corpora.map { "\($0.kind.rawValue):\($0.path)" }.joined(separator: " ")),
            ("files", "\(m.files.count) (\(String(format: "%.1f", m.totalDurationSeconds / 60)) min of audio), \(m.skipped.count) skipped"),
            ("outside the label set", m.droppedLabels.isEmpty ? "none" : m.droppedLabels.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")),
            ("GDS", (m.gds.enabled ? "on" : "off") + ", keeps segments with score > \(ReportRun.trim(m.gds.threshold))"),
            ("segments", "\(t.segmentsBefore) before GDS, \(t.segmentsAfter) kept, \(t.segmentsRemoved) removed (\(HTML.percent(m.fractionRemoved))), \(t.constantSegments) constant"),
            ("front end", ReportBuilder.describe(m.frontEnd) + " (hash \(m.frontEndHash))"),
        ])
        func row(_ name: String, _ c: StoreManifest.Counts) -> [String] {
            [HTML.escape(name), String(c.files), String(c.segmentsBefore), String(c.segmentsAfter), String(c.segmentsRemoved),
             HTML.percent(c.segmentsBefore > 0 ? Double(c.segmentsRemoved) / Double(c.segmentsBefore) : nil), String(c.constantSegments)]
        }
        let header = ["files", "segments before", "kept", "removed", "removed %", "constant"]
        s.body += "<h3>Per class</h3><div class=\"row\"><div>"
            + HTML.table(["class"] + header, m.labels.map { row($0, m.perClass[$0] ?? .init()) } + [row("all", t)], numeric: Set(1...6))
            + "</div>"
        let classes = m.labels
        s.body += svg.embed(Chart.groupedBars(categories: classes, series: [
            BarSeries(name: "before GDS", values: classes.map { Double(m.perClass[$0]?.segmentsBefore ?? 0) }),
            BarSeries(name: "kept", values: classes.map { Double(m.perClass[$0]?.segmentsAfter ?? 0) }),
        ], title: "Segments per class before and after GDS", yLabel: "segments", width: 520, height: 320), cls: "chart side")
        s.body += "</div>"
        let speakers = m.perSpeaker.sorted { $0.key < $1.key }
        let speakerTable = HTML.table(["speaker"] + header, speakers.map { row($0.key, $0.value) }, numeric: Set(1...6))
        s.body += speakers.count > 12
            ? "<details><summary>Per speaker (\(speakers.count))</summary>\(speakerTable)</details>"
            : "<h3>Per speaker</h3>" + speakerTable
        let used = main.split
        func splitRow(_ name: String, _ sp: Split) -> [String] {
            [HTML.escape(name) + (name == used ? " <span class=\"tag\">this run</span>" : ""), String(sp.train.count), String(sp.test.count),
             HTML.escape(sp.method + (sp.testSpeakers.map { $0.isEmpty ? "" : "; held-out speakers " + $0.joined(separator: ", ") } ?? ""))]
        }
        s.body += "<h3>Splits (files)</h3>" + HTML.table(["split", "train", "test", "how"],
                                                         [splitRow("random", m.splits.random), splitRow("speaker", m.splits.speaker)], numeric: [1, 2])
        if !m.skipped.isEmpty {
            let shown = m.skipped.prefix(50)
            s.body += "<details><summary>Skipped files (\(m.skipped.count))</summary>"
                + HTML.table(["file", "reason"], shown.map { [HTML.escape($0.path), HTML.escape($0.reason)] })
                + (m.skipped.count > shown.count ? "<p>… and \(m.skipped.count - shown.count) more (`ser store info` lists them all).</p>" : "")
                + "</details>"
        }
        return s
    }

    // MARK: - Training curves

    /// Metrics fields that are not curves worth plotting.
    static let bookkeeping: Set<String> = ["epoch", "step", "ranks", "train_seconds", "train_segments", "segments_per_second", "peak_rss_mb"]

    mutating func training() -> ReportSection {
        var s = ReportSection(id: "training", title: "Training and validation curves", body: "")
        let r = main
        if let p = r.metricsProblem { s.body += note(p) }
        guard !r.epochs.isEmpty else {
            s.body += HTML.missing("training curves (RUN/metrics.jsonl has no epoch yet)", fix: "ser train --resume \(r.path)")
            return s
        }
        let x = r.epochNumbers
        let keys = Set(r.epochs.flatMap { $0.keys })
        func curves(_ names: [(key: String, label: String, dashed: Bool)]) -> [LineSeries] {
            names.compactMap { n in r.series(n.key).map { LineSeries(name: n.label, x: x, y: $0, dashed: n.dashed) } }
        }
        let lossKeys: [(String, String, Bool)] = [("train_loss", "training loss", false), ("val_loss", "validation loss", true),
                                                  ("train_reconstruction", "training reconstruction", false),
                                                  ("val_reconstruction", "validation reconstruction", true),
                                                  ("train_classification", "training cross-entropy", false),
                                                  ("train_prototypical", "training prototypical", false)]
        let scoreKeys: [(String, String, Bool)] = [("val_segment_wa", "segments WA", true), ("val_segment_ua", "segments UA", true),
                                                   ("val_file_wa", "files WA", false), ("val_file_ua", "files UA", false),
                                                   ("val_file_f1", "files macro-F1", false),
                                                   ("train_episode_accuracy", "training episode accuracy", false)]
        let loss = curves(lossKeys), scores = curves(scoreKeys)
        s.body += "<div class=\"row\">"
        if !loss.isEmpty {
            s.body += svg.embed(Chart.line(loss, title: "Loss per epoch", xLabel: "epoch", yLabel: "loss", width: 560, height: 340), cls: "chart half")
        }
        if !scores.isEmpty {
            s.body += svg.embed(Chart.line(scores, title: "Validation (held-out files) per epoch", xLabel: "epoch", yLabel: "score",
                                           width: 560, height: 340, yRange: 0 ... 1), cls: "chart half")
        }
        let known = Set(lossKeys.map(\.0) + scoreKeys.map(\.0)).union(ReportBuilder.bookkeeping)
        let others = keys.subtracting(known).sorted().compactMap { k in r.series(k).map { LineSeries(name: k, x: x, y: $0) } }
        if !others.isEmpty {
            s.body += svg.embed(Chart.line(others, title: "Other figures per epoch", xLabel: "epoch", width: 560, height: 340), cls: "chart half")
        }
        s.body += "</div>"
        // The per-epoch table: every figure, including speed.
        let columns = ["epoch", "step"] + (lossKeys + scoreKeys).map(\.0).filter(keys.contains) + others.map(\.name)
            + ["train_seconds", "train_segments", "segments_per_second", "peak_rss_mb"].filter(keys.contains)
        let rows = r.epochs.map { e in columns.map { k -> String in
            guard let v = ReportRun.double(e[k]) else { return "–" }
            switch k {
            case "epoch", "step", "train_segments": return ReportRun.trim(v)
            case "segments_per_second", "peak_rss_mb", "train_seconds": return String(format: "%.0f", v)
            default: return String(format: "%.4f", v)
            }
        } }
        var summary = "\(r.epochs.count) epoch(s)"
        if let t = r.trainingSeconds { summary += ", \(formatDuration(t)) of training" }
        if let sps = r.series("segments_per_second")?.filter({ $0.isFinite }), !sps.isEmpty {
            summary += String(format: ", %.0f segments/s on average", sps.reduce(0, +) / Double(sps.count))
        }
        s.body += "<p>\(HTML.escape(summary)).</p><details><summary>Every epoch</summary>"
            + HTML.table(columns.map(HTML.escape), rows, numeric: Set(columns.indices), cls: "compact") + "</details>"
        return s
    }

    // MARK: - Evaluation

    mutating func evaluation() -> ReportSection {
        var s = ReportSection(id: "evaluation", title: "Evaluation on the held-out files", body: "")
        let r = main
        guard let e = r.evaluation else {
            s.body = note(r.evaluationProblem ?? "no evaluation") + HTML.missing("the final evaluation (RUN/evaluation.json)", fix: "ser train --resume \(r.path)")
            return s
        }
        let f = e.files
        var headline: [(String, String)] = [
            ("files", "\(f.total) (\(r.split) split, test side); " + (r.family == nil
                ? "a file's prediction is the mean of its segments' probabilities"
                : "predicted by the \(r.family!) run's own classifier (docs/FAMILIES.md)")),
            ("file level", "WA \(HTML.percent(f.weightedAccuracy)), UA \(HTML.percent(f.unweightedAccuracy)), macro-F1 \(HTML.number(f.macroF1))"),
        ]
        if let g = e.segments {
            headline.append(("segment level", "WA \(HTML.percent(g.weightedAccuracy)), UA \(HTML.percent(g.unweightedAccuracy)), macro-F1 \(HTML.number(g.macroF1)) over \(g.total) segments"))
        }
        if let l = e.loss { headline.append(("loss", String(format: "%.4f (cross-entropy per segment)", l))) }
        if let m = e.reconstructionMSE { headline.append(("reconstruction MSE", String(format: "%.4f", m))) }
        if let v = e.verification {
            headline.append(("verification", String(format: "EER %.4f over %d trials (threshold %.2f): %@", v.eer, v.trials, v.eerThreshold, v.accepted ? "accepted" : "rejected")))
        }
        s.body = HTML.facts(headline)
        if let classifiers = e.classifiers, !classifiers.isEmpty {
            s.body += "<h3>Classifiers</h3>" + HTML.table(["classifier", "WA", "UA", "macro-F1"], classifiers.sorted { $0.key < $1.key }.map { k, c in
                [HTML.escape(k), HTML.percent(c.weightedAccuracy), HTML.percent(c.unweightedAccuracy), HTML.number(c.macroF1)]
            }, numeric: [1, 2, 3])
        }
        let labels = f.labels
        s.body += "<div class=\"row\">"
        s.body += svg.embed(Chart.heatmap(f.confusion.map { $0.map(Double.init) }, rowLabels: labels, columnLabels: labels,
                                          title: "Confusion matrix, files", xLabel: "predicted", yLabel: "true", colorMap: .viridis,
                                          cellLabels: true, format: "%.0f", width: 420), cls: "chart third")
        if let g = e.segments, g.labels.count == labels.count {
            s.body += svg.embed(Chart.heatmap(g.confusion.map { $0.map(Double.init) }, rowLabels: labels, columnLabels: labels,
                                              title: "Confusion matrix, segments", xLabel: "predicted", yLabel: "true", colorMap: .viridis,
                                              cellLabels: true, format: "%.0f", width: 420), cls: "chart third")
        }
        s.body += svg.embed(Chart.groupedBars(categories: labels, series: [
            BarSeries(name: "precision", values: labels.indices.map { f.precision($0) ?? .nan }),
            BarSeries(name: "recall", values: labels.indices.map { f.recall($0) ?? .nan }),
            BarSeries(name: "F1", values: labels.indices.map { f.f1($0) ?? .nan }),
        ], title: "Per class, files", width: 420, height: 320, yRange: 0 ... 1), cls: "chart third")
        s.body += "</div>"
        var header = ["class", "support (files)", "precision", "recall", "F1"]
        if e.segments != nil { header += ["support (segments)", "precision", "recall", "F1"] }
        var rows: [[String]] = []
        for (c, name) in labels.enumerated() {
            var row = [HTML.escape(name), String(f.support(c)), HTML.number(f.precision(c)), HTML.number(f.recall(c)), HTML.number(f.f1(c))]
            if let g = e.segments, g.labels.count == labels.count {
                row += [String(g.support(c)), HTML.number(g.precision(c)), HTML.number(g.recall(c)), HTML.number(g.f1(c))]
            }
            rows.append(row)
        }
        s.body += "<h3>Per class</h3>" + HTML.table(header, rows, numeric: Set(1..<header.count))
        // The autoencoders' permutation importance, drawn by `ser train` itself.
        var importance = ""
        for name in ["importance-groups.svg", "importance.svg"] {
            guard let text = try? String(contentsOfFile: r.path + "/" + name, encoding: .utf8) else { continue }
            if text.contains("<svg"), !text.contains("<script") {
                importance += svg.embed(text, caption: name, cls: "chart half")
            } else {
                importance += note("\(r.path)/\(name) is not an SVG chart; left out")
            }
        }
        if !importance.isEmpty { s.body += "<h3>Feature importance (drop in UA when a feature is permuted)</h3><div class=\"row\">" + importance + "</div>" }
        // The most confident mistakes point at files worth listening to.
        if let predictions = e.filePredictions {
            let wrong = predictions.filter { $0.predicted != $0.label && $0.label < labels.count && $0.predicted < labels.count }
                .sorted { $0.probabilities[$0.predicted] > $1.probabilities[$1.predicted] }
            if !wrong.isEmpty {
                let files = r.store?.files
                let shown = wrong.prefix(10)
                s.body += "<details><summary>Misclassified files (\(wrong.count) of \(predictions.count)), most confident first</summary>"
                    + HTML.table(["file", "true", "predicted", "probability", "segments"], shown.map { p in
                        let path = files.flatMap { $0.indices.contains(p.file) ? $0[p.file].relativePath : nil } ?? "file \(p.file)"
                        return [HTML.escape(path), HTML.escape(labels[p.label]), HTML.escape(labels[p.predicted]),
                                HTML.number(p.probabilities[p.predicted]), String(p.segments)]
                    }, numeric: [3, 4]) + "</details>"
            }
        }
        return s
    }

    // MARK: - Comparison of runs

    mutating func comparison() -> ReportSection {
        var s = ReportSection(id: "comparison", title: "Comparison of runs", body: "")
        let compared = runs.filter { $0.evaluation != nil }
        let left = runs.filter { $0.evaluation == nil }
        if runs.count == 1 {
            s.body += "<p>One run given; name more runs after it (<code>ser report RUN OTHER…</code>) to compare, e.g. with and without GDS, or fusion against a single branch.</p>"
        }
        for r in left {
            s.body += note("\(r.name) (\(r.path)) is left out of the comparison: " + (r.evaluationProblem ?? r.configProblem ?? "no evaluation"))
        }
        guard !compared.isEmpty else {
            s.body += HTML.missing("a comparison (no run has an evaluation.json)", fix: "ser train … for each run, then ser report RUN OTHER…")
            return s
        }
        let header = ["run", "model", "GDS", "split", "epochs", "ranks × threads", "files WA", "files UA", "files macro-F1",
                      "segments WA", "segments UA", "training time"]
        let rows: [[String]] = compared.map { r in
            let e = r.evaluation!
            return [HTML.escape(r.name) + (r.path == main.path ? " <span class=\"tag\">main</span>" : ""),
                    HTML.escape(r.modelName), HTML.escape(r.gds), HTML.escape(r.split), String(r.epochs.count),
                    "\(r.ranks.map(String.init) ?? "?") × \(r.threadsPerRank.map(String.init) ?? "?")",
                    HTML.percent(e.files.weightedAccuracy), HTML.percent(e.files.unweightedAccuracy), HTML.number(e.files.macroF1),
                    HTML.percent(e.segments?.weightedAccuracy), HTML.percent(e.segments?.unweightedAccuracy),
                    r.trainingSeconds.map(formatDuration) ?? "–"]
        }
        s.body += HTML.table(header, rows, numeric: Set(4..<header.count))
        s.body += "<p class=\"small\">WA = accuracy; UA = mean recall over classes (balanced accuracy); training time = Σ train_seconds of metrics.jsonl.</p>"
        s.body += "<div class=\"row\">"
        let names = compared.map(\.name)
        s.body += svg.embed(Chart.groupedBars(categories: names, series: [
            BarSeries(name: "WA", values: compared.map { $0.evaluation!.files.weightedAccuracy }),
            BarSeries(name: "UA", values: compared.map { $0.evaluation!.files.unweightedAccuracy }),
            BarSeries(name: "macro-F1", values: compared.map { $0.evaluation!.files.macroF1 }),
        ], title: "File-level scores per run", width: 560, height: 340, yRange: 0 ... 1, valueLabels: compared.count <= 6), cls: "chart half")
        let curves = compared.compactMap { r -> LineSeries? in
            guard let y = r.series("val_file_ua") else { return nil }
            return LineSeries(name: r.name, x: r.epochNumbers, y: y)
        }
        if !curves.isEmpty {
            s.body += svg.embed(Chart.line(curves, title: "Validation UA (files) per epoch", xLabel: "epoch", yLabel: "UA",
                                           width: 560, height: 340, yRange: 0 ... 1), cls: "chart half")
        }
        s.body += "</div>"
        if compared.count > 1 {
            let labels = main.labels
            let sameLabels = compared.allSatisfy { $0.evaluation!.files.labels == labels }
            if sameLabels && !labels.isEmpty {
                s.body += svg.embed(Chart.groupedBars(categories: labels, series: compared.map { r in
                    BarSeries(name: r.name, values: labels.indices.map { r.evaluation!.files.f1($0) ?? .nan })
                }, title: "F1 per class and run (files)", width: 760, height: 340, yRange: 0 ... 1))
            }
            s.body += "<details><summary>Configuration of each run</summary>"
            for r in compared where r.path != main.path {
                s.body += "<h4>\(HTML.escape(r.name)) — \(HTML.escape(r.path))</h4>"
                    + HTML.table(["field", "value"], ReportBuilder.flatten(r.configJSON["options"] ?? .object([:])).map { [HTML.code($0.0), HTML.escape($0.1)] }, cls: "compact")
            }
            s.body += "</details>"
        }
        return s
    }

    // MARK: - Explanations

    var explainCommand: String { "ser explain --run \(main.path) --split test" }

    /// Reads a file to embed, or says why it is not embedded.
    mutating func embedded(_ relative: String, mime: String, magic: [UInt8]) -> (uri: String?, problem: String?) {
        let path = explanations.directory + "/" + relative
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path), let size = attrs[.size] as? Int else {
            return (nil, "\(path) is missing")
        }
        guard size <= ReportBuilder.maxEmbeddedBytes else {
            return (nil, "\(path) is \(HTML.bytes(size)), over the \(HTML.bytes(ReportBuilder.maxEmbeddedBytes)) embedding limit: open it beside the report")
        }
        guard let data = try? readFile(path), data.count >= magic.count, Array(data.prefix(magic.count)) == magic else {
            return (nil, "\(path) is not a \(mime) file (damaged?); rerun \(explainCommand) to rewrite it")
        }
        embeddedBytes += data.count
        return (HTML.dataURI(data, mime: mime), nil)
    }

    static let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    static let wavMagic: [UInt8] = Array("RIFF".utf8)

    /// Up to `count` files, taking the classes in turn so that every emotion appears early.
    static func pickGallery(_ files: [(stem: String, path: String, tasks: [String: TaskRecord])], labels: [String], count: Int)
        -> [(stem: String, path: String, tasks: [String: TaskRecord])] {
        var queues: [String: [(stem: String, path: String, tasks: [String: TaskRecord])]] = [:]
        var order = labels
        for f in files {
            let label = f.tasks.values.first?.label ?? "(no label)"
            if !order.contains(label) { order.append(label) }
            queues[label, default: []].append(f)
        }
        var out: [(stem: String, path: String, tasks: [String: TaskRecord])] = []
        var round = 0
        while out.count < count {
            var added = false
            for l in order where out.count < count {
                if let q = queues[l], round < q.count { out.append(q[round]); added = true }
            }
            if !added { break }
            round += 1
        }
        return out
    }

    mutating func explanationGallery() -> ReportSection {
        var s = ReportSection(id: "explanations", title: "Explanations", body: "")
        guard let index = explanations.index else {
            s.body = (explanations.indexProblem.map { note($0) } ?? "")
                + HTML.missing("explanations (Grad-CAM, LIME and occlusion maps; audible Grad-CAM)", fix: explainCommand)
            return s
        }
        let counts = index.counts
        s.body += HTML.facts([
            ("folder", explanations.directory),
            ("run explained", index.run),
            ("methods", index.methods.joined(separator: ", ")),
            ("Grad-CAM layer", index.layer),
            ("tasks", "\(counts["ok"] ?? 0) ok, \(counts["failed"] ?? 0) failed, \(counts["pending"] ?? 0) pending, over \(index.ranks) rank(s)"),
        ])
        for p in explanations.recordProblems.prefix(10) { s.body += note(p) }
        let failed = index.tasks.filter { $0.status == "failed" }
        if !failed.isEmpty {
            s.body += "<details><summary>Failed tasks (\(failed.count))</summary>"
                + HTML.table(["file", "method", "reason"], failed.prefix(50).map { [HTML.escape($0.path), HTML.escape($0.method), HTML.escape($0.reason ?? "–")] })
                + "</details>"
        }
        let all = explanations.files
        guard !all.isEmpty else {
            s.body += HTML.missing("finished explanation tasks (none is ok in index.json)", fix: explainCommand)
            return s
        }
        let chosen = ReportBuilder.pickGallery(all, labels: index.labels, count: galleryFiles)
        s.body += "<p>\(chosen.count) of \(all.count) explained file(s) shown (<code>--gallery N</code> sets how many), the classes taken in turn. "
            + "Grad-CAM is drawn in magma (≥ 0); LIME weights and occlusion's probability drop in blue–white–red around 0. "
            + "The audible Grad-CAM keeps the audio where the smoothed Grad-CAM time profile is positive; the masked version applies the map to the spectrum.</p>"
        let methods = index.methods
        for f in chosen {
            let any = f.tasks.values.first!
            let prob = any.probabilities[any.prediction]
            let verdict = any.label.map { $0 == any.prediction ? "correct" : "wrong" } ?? "no label"
            s.body += "<div class=\"gallery-file\"><h3>\(HTML.escape(f.path))</h3><p class=\"small\">true: <strong>\(HTML.escape(any.label ?? "–"))</strong> · predicted: <strong>\(HTML.escape(any.prediction))</strong> (\(HTML.number(prob))) · <span class=\"\(verdict)\">\(verdict)</span> · \(String(format: "%.2f", any.secondsOfAudio)) s, \(any.patches) segment(s), \(any.keptPatches) kept by GDS</p><div class=\"methods\">"
            for m in methods {
                guard let rec = f.tasks[m] else {
                    s.body += "<figure class=\"method\"><div class=\"missing\">\(HTML.escape(m)): no finished task for this file</div></figure>"
                    continue
                }
                let png = embedded("\(m)/\(f.stem).png", mime: "image/png", magic: ReportBuilder.pngMagic)
                s.body += "<figure class=\"method\" data-method=\"\(HTML.escape(m))\">"
                if let uri = png.uri {
                    s.body += "<img src=\"\(uri)\" alt=\"\(HTML.escape(m)) map of \(HTML.escape(f.path))\">"
                } else {
                    s.body += note(png.problem!)
                }
                var caption = "<strong>\(HTML.escape(ExplainMethod(rawValue: m)?.title ?? m))</strong> for \(HTML.escape(rec.target)) (p = \(HTML.number(rec.targetProbability)))"
                if let fs = rec.faithfulness {
                    caption += "<br>deletion AUC \(HTML.number(fs.deletionAUC)) (random \(HTML.number(fs.randomDeletionAUC))), insertion AUC \(HTML.number(fs.insertionAUC)) (random \(HTML.number(fs.randomInsertionAUC)))"
                }
                if let p = rec.pointing {
                    caption += "<br>pointing game: \(p.hit ? "hit" : "miss") at \(String(format: "%.2f s, %.0f Hz", p.seconds, p.hertz)) (chance \(HTML.percent(p.chance, 0)))"
                }
                s.body += "<figcaption>\(caption)</figcaption>"
                if m == ExplainMethod.gradcam.rawValue {
                    var players = ""
                    for (suffix, title) in [("audible", "audible Grad-CAM (gated)"), ("masked", "masked resynthesis")] {
                        let name = "\(m)/\(f.stem).\(suffix).wav"
                        guard rec.outputs.contains(name) || FileManager.default.fileExists(atPath: explanations.directory + "/" + name) else { continue }
                        let wav = embedded(name, mime: "audio/wav", magic: ReportBuilder.wavMagic)
                        if let uri = wav.uri {
                            players += "<div class=\"player\"><span>\(title)</span><audio controls preload=\"metadata\" src=\"\(uri)\"></audio></div>"
                        } else {
                            players += note(wav.problem!)
                        }
                    }
                    if let a = rec.audible { players += "<p class=\"small\">the gate keeps \(HTML.percent(a.keptShare, 0)) of the samples</p>" }
                    s.body += players.isEmpty ? "<p class=\"small\">no audio (explained with --no-audio)</p>" : players
                }
                s.body += "</figure>"
            }
            s.body += "</div></div>"
        }
        return s
    }

    // MARK: - Frequency profiles

    mutating func profiles() -> ReportSection {
        var s = ReportSection(id: "profiles", title: "Per-emotion frequency profiles", body: "")
        guard let p = explanations.profile else {
            s.body = (explanations.index != nil ? explanations.profileProblem.map { note($0) } ?? "" : "")
                + HTML.missing("the per-emotion frequency profile (Grad-CAM per mel band, averaged over each class's files)",
                               fix: "ser explain --run \(main.path) --split test --methods gradcam")
            return s
        }
        let present = p.labels.filter { p.profiles[$0] != nil }
        s.body += "<p>For each class, the mean Grad-CAM activation (layer \(HTML.escape(p.layer))) per mel band over its files, each file's map scaled to a maximum of 1 (the paper's Figure 24).</p>"
        s.body += svg.embed(p.svg())
        if !present.isEmpty {
            let columns = p.bandCentersHz.map { $0 >= 1000 ? String(format: "%.1fk", $0 / 1000) : String(format: "%.0f", $0) }
            s.body += svg.embed(Chart.heatmap(present.map { p.profiles[$0]! }, rowLabels: present, columnLabels: columns,
                                              title: "Grad-CAM per mel band (Hz)", xLabel: "mel band centre (Hz)", colorMap: .magma,
                                              cellLabels: false, width: 1000))
            let rows = present.map { l -> [String] in
                let v = p.profiles[l]!
                let peak = v.indices.max { v[$0] < v[$1] } ?? 0
                return [HTML.escape(l), String(p.files[l] ?? 0), String(format: "%.0f Hz", p.bandCentersHz[peak]), HTML.number(v[peak]),
                        HTML.number(v.reduce(0, +) / Double(max(1, v.count)))]
            }
            s.body += HTML.table(["class", "files", "peak band", "peak value", "mean"], rows, numeric: [1, 2, 3, 4])
        }
        return s
    }

    // MARK: - Faithfulness

    mutating func faithfulness() -> ReportSection {
        var s = ReportSection(id: "faithfulness", title: "Faithfulness of the explanations", body: "")
        guard let summary = explanations.faithfulness else {
            s.body = (explanations.index != nil ? explanations.faithfulnessProblem.map { note($0) } ?? "" : "")
                + HTML.missing("faithfulness scores (deletion/insertion against random orders, pointing game)", fix: explainCommand)
            return s
        }
        s.body += "<p>Deletion hides the most important cells first: a faithful map makes the class probability fall fast (smaller area than a random order). "
            + "Insertion restores them first: it should rise fast (larger area). The advantage over random is per file, with its standard error; "
            + "the pointing game counts files whose map peaks inside a cue box of the synthetic corpus.</p>"
        func cmp(_ c: FaithfulnessSummary.Comparison?) -> [String] {
            guard let c else { return ["–", "–", "–", "–"] }
            return [HTML.number(c.method), HTML.number(c.random),
                    HTML.number(c.advantage) + (c.standardError.map { " ± " + HTML.number($0) } ?? ""),
                    "<span class=\"verdict\">\(HTML.escape(c.verdict))</span>"]
        }
        let rows = summary.methods.map { m -> [String] in
            [HTML.escape(m.method), String(m.ok), String(m.failed)] + cmp(m.deletionAUC) + cmp(m.insertionAUC)
                + [m.pointingRate.map { "\(m.pointingHits)/\(m.pointingFiles) = \(HTML.percent($0, 0))" } ?? "–",
                   HTML.percent(m.pointingChance, 0), String(format: "%.2f", m.meanSeconds)]
        }
        s.body += HTML.table(["method", "ok", "failed", "deletion AUC", "random", "advantage", "verdict", "insertion AUC", "random",
                              "advantage", "verdict", "pointing game", "chance", "s/task"], rows, numeric: [1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13])
        let methods = summary.methods.filter { $0.deletionAUC != nil || $0.insertionAUC != nil }
        s.body += "<div class=\"row\">"
        if !methods.isEmpty {
            s.body += svg.embed(Chart.groupedBars(categories: methods.map(\.method), series: [
                BarSeries(name: "deletion", values: methods.map { $0.deletionAUC?.method ?? .nan }),
                BarSeries(name: "deletion, random", values: methods.map { $0.deletionAUC?.random ?? .nan }),
                BarSeries(name: "insertion", values: methods.map { $0.insertionAUC?.method ?? .nan }),
                BarSeries(name: "insertion, random", values: methods.map { $0.insertionAUC?.random ?? .nan }),
            ], title: "Area under the curves", yLabel: "AUC", width: 560, height: 340, yRange: 0 ... 1), cls: "chart half")
        }
        let pointing = summary.methods.filter { $0.pointingRate != nil }
        if !pointing.isEmpty {
            s.body += svg.embed(Chart.groupedBars(categories: pointing.map(\.method), series: [
                BarSeries(name: "hit rate", values: pointing.map { $0.pointingRate ?? .nan }),
                BarSeries(name: "chance", values: pointing.map { $0.pointingChance ?? .nan }),
            ], title: "Pointing game", yLabel: "share of files", width: 560, height: 340, yRange: 0 ... 1), cls: "chart half")
        }
        s.body += "</div>"
        // Mean curves per method over the finished tasks (each file's curve is already its patches' mean).
        var deletion: [LineSeries] = [], insertion: [LineSeries] = []
        for (i, m) in summary.methods.map(\.method).enumerated() {
            let curves = explanations.records.values.filter { $0.method == m }.compactMap(\.faithfulness)
            guard let n = curves.first?.deletion.count, n > 1,
                  curves.allSatisfy({ $0.deletion.count == n && $0.insertion.count == n && $0.randomDeletion.count == n && $0.randomInsertion.count == n })
            else { continue }
            func mean(_ k: KeyPath<Faithfulness.FileScores, [Double]>) -> [Double] {
                (0..<n).map { j in curves.map { $0[keyPath: k][j] }.reduce(0, +) / Double(curves.count) }
            }
            let x = (0..<n).map { Double($0) / Double(n - 1) }
            let color = Chart.color(i)
            deletion += [LineSeries(name: m, x: x, y: mean(\.deletion), color: color),
                         LineSeries(name: m + " random", x: x, y: mean(\.randomDeletion), color: color, dashed: true)]
            insertion += [LineSeries(name: m, x: x, y: mean(\.insertion), color: color),
                          LineSeries(name: m + " random", x: x, y: mean(\.randomInsertion), color: color, dashed: true)]
        }
        if !deletion.isEmpty {
            s.body += "<div class=\"row\">"
            s.body += svg.embed(Chart.line(deletion, title: "Deletion (mean over files)", xLabel: "share of cells hidden",
                                           yLabel: "target probability", width: 560, height: 340, xRange: 0 ... 1, yRange: 0 ... 1), cls: "chart half")
            s.body += svg.embed(Chart.line(insertion, title: "Insertion (mean over files)", xLabel: "share of cells restored",
                                           yLabel: "target probability", width: 560, height: 340, xRange: 0 ... 1, yRange: 0 ... 1), cls: "chart half")
            s.body += "</div>"
        }
        return s
    }
}
