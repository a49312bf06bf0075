import ArgumentParser
import Foundation
import Shared
import Worker

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a self-contained HTML report of a run (and compare it with others).",
        discussion: """
        One HTML file that opens without a network: the configuration; corpus and GDS statistics \
        (segments before and after, per class); training and validation curves; the confusion \
        matrices and per-class precision, recall and F1; the comparison of the runs given (scores, \
        GDS on or off, training time); the explanation gallery (spectrogram overlays per method, \
        audible Grad-CAM players); the per-emotion frequency profiles; the faithfulness scores. \
        Charts are inline SVG, images and audio data: URIs.

        The first RUN is the one reported in detail; the others appear in the comparison. A part \
        that is missing (no explanations yet, a store that moved, an unfinished run) is a section \
        saying so and naming the command that produces it. docs/REPORT.md describes the sections.
        """
    )

    @Argument(help: ArgumentHelp("Run directories written by `ser train`: the first is reported, the others compared with it.", valueName: "run"))
    var runs: [String]

    @Option(help: "HTML file to write (written atomically).")
    var out: String

    @Option(help: "Title of the page (default: the first run's directory name).")
    var title: String?

    @Option(help: "Explanations of the first run (default RUN/explanations, where `ser explain` writes).")
    var explanations: String?

    @Option(help: "Files shown in the explanation gallery, with their maps and audio (0: none). Keeps the page's size reasonable.")
    var gallery: Int = 6

    @Option(help: "Feature store of the first run, when it is no longer where config.json says.")
    var features: String?

    @Option(help: "Compute threads (the report itself uses one).")
    var threads: Int?

    @Flag(help: "Print only warnings.")
    var quiet = false

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run directory: ser report RUN [RUN…] --out report.html") }
        for r in runs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: r, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("\(r): no such run directory")
            }
        }
        guard FileManager.default.fileExists(atPath: RunDirectory(runs[0]).config) else {
            throw ValidationError("\(runs[0]): no config.json there; the first run must be a directory written by `ser train`")
        }
        if gallery < 0 { throw ValidationError("--gallery must be 0 or more (got \(gallery))") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        let parent = (out as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        if !parent.isEmpty, FileManager.default.fileExists(atPath: parent, isDirectory: &isDir), !isDir.boolValue {
            throw ValidationError("--out \(out): \(parent) is not a directory")
        }
        if let explanations, !FileManager.default.fileExists(atPath: explanations) {
            throw ValidationError("--explanations \(explanations): no such directory (ser explain --out writes it)")
        }
        if let features, !FileManager.default.fileExists(atPath: features + "/" + StoreManifest.fileName) {
            throw ValidationError("--features \(features): no \(StoreManifest.fileName) there; give a store written by `ser preprocess`")
        }
    }

    /// Names for tables and legends: directory names, made unique with their parent folder.
    static func names(_ paths: [String]) -> [String] {
        let standardized = paths.map { ($0 as NSString).standardizingPath }
        var names = standardized.map { ($0 as NSString).lastPathComponent }
        for i in names.indices where names.filter({ $0 == names[i] }).count > 1 {
            let parent = ((standardized[i] as NSString).deletingLastPathComponent as NSString).lastPathComponent
            names[i] = parent.isEmpty ? names[i] : parent + "/" + names[i]
        }
        var seen: [String: Int] = [:]
        return names.map { n in
            seen[n, default: 0] += 1
            return seen[n]! == 1 ? n : "\(n) (\(seen[n]!))"
        }
    }

    func run() throws {
        let world = Runtime.start(threads: threads)
        // Only rank 0 reads and writes: under mpirun the other ranks have nothing to do.
        if world.isRoot {
            let console = Console(quiet: quiet)
            let started = Date()
            let names = Report.names(runs)
            let loaded = runs.enumerated().map { i, path in ReportRun.load(path, name: names[i], features: i == 0 ? features : nil) }
            let explanationDir = explanations ?? runs[0] + "/explanations"
            var builder = ReportBuilder(runs: loaded, explanations: ReportExplanations.load(explanationDir), galleryFiles: gallery)
            let sections = builder.sections()
            let formatter = ISO8601DateFormatter()
            let subtitle = "Generated by ser report on \(formatter.string(from: Date())) from \(runs.joined(separator: ", "))"
            let html = ReportPage.render(title: title ?? "SER report: " + names[0], subtitle: subtitle, sections: sections)
            do {
                let parent = (out as NSString).deletingLastPathComponent
                if !parent.isEmpty { try AtomicFile.makeDirectory(parent) }
                try AtomicFile.write(html, to: out)
            } catch {
                FileHandle.standardError.write(Data("ser report: cannot write \(out): \(error)\n".utf8))
                throw ExitCode(1)
            }
            var warned = Set<String>()
            for n in builder.notes where warned.insert(n).inserted { console.warn(n) }
            console.info(String(format: "wrote %@ (%@, of which %@ embedded images and audio; %d sections, %d run(s)) in %@", out as NSString,
                                HTML.bytes(html.utf8.count) as NSString, HTML.bytes(builder.embeddedBytes) as NSString, sections.count, runs.count,
                                formatDuration(Date().timeIntervalSince(started)) as NSString))
        }
        world.finalize()
    }
}
