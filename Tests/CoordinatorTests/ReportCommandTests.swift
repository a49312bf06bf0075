import Foundation
import Shared
import TestSupport
import XCTest

/// `ser report` as users run it: on a tiny store and two runs trained with `ser train` (GDS on,
/// and `--all-segments`), explained with `ser explain`; the page's figures are checked against the
/// run's own files, and the page is rendered in headless Chromium (DOM and screenshot).
final class ReportCommandTests: XCTestCase {
    struct Fixture {
        let dir: String, store: String, run: String, allSegments: String
        /// Whether `ser explain` ran (it exists in this build).
        let explained: Bool
    }

    nonisolated(unsafe) static var fixture: Result<Fixture, Error>?

    static let sectionIDs = ["configuration", "corpus", "training", "evaluation", "comparison", "explanations", "profiles", "faithfulness"]

    /// synth → preprocess → two trainings → explain (2 test files, Grad-CAM and occlusion): once.
    func fixture() throws -> Fixture {
        if let f = Self.fixture { return try f.get() }
        let result = Result<Fixture, Error> {
            let dir = NSTemporaryDirectory() + "ser-report-fixture-\(getpid())"
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let corpus = dir + "/corpus", store = dir + "/store", run = dir + "/gds", all = dir + "/all"
            let train = ["--features", store, "--width", "0.125", "--epochs", "2", "--batch", "16", "--learning-rate", "0.001", "--quiet"]
            for args in [["synth", "--out", corpus, "--files-per-class", "8", "--speakers", "2", "--duration", "1.5", "--seed", "3"],
                         ["preprocess", "--corpus", "synth:" + corpus, "--out", store, "--shards", "2"],
                         ["train", "--out", run] + train,
                         ["train", "--out", all, "--all-segments"] + train] {
                let r = try Command.ser(args)
                guard r.status == 0 else { throw FileError("fixture: ser \(args[0]) failed: \(r.output)") }
            }
            var explained = false
            if try Command.ser(["explain", "--help"]).status == 0 {
                let r = try Command.ser(["explain", "--run", run, "--split", "test", "--limit", "2", "--methods", "gradcam,occlusion",
                                         "--occlusion-stride", "16", "--faithfulness-steps", "4", "--quiet"])
                guard r.status == 0 else { throw FileError("fixture: ser explain failed: \(r.output)") }
                explained = true
            }
            return Fixture(dir: dir, store: store, run: run, allSegments: all, explained: explained)
        }
        Self.fixture = result
        return try result.get()
    }

    override class func tearDown() {
        if case .success(let f) = fixture, ProcessInfo.processInfo.environment["SER_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: f.dir)
        }
        super.tearDown()
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: try readFile(path)) as? [String: Any], path)
    }

    func report(_ args: [String], out: String) throws -> String {
        let r = try Command.ser(["report"] + args + ["--out", out])
        XCTAssertEqual(r.status, 0, r.output)
        return try String(contentsOfFile: out, encoding: .utf8)
    }

    func matches(_ pattern: String, in text: String) -> [[String]] {
        let re = try! NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        return re.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
            (0..<m.numberOfRanges).map { Range(m.range(at: $0), in: text).map { String(text[$0]) } ?? "" }
        }
    }

    /// The body of `<section id="id">`.
    func section(_ id: String, in html: String) throws -> String {
        let start = try XCTUnwrap(html.range(of: "<section id=\"\(id)\">"), "section \(id)")
        let end = try XCTUnwrap(html.range(of: "</section>", range: start.upperBound..<html.endIndex))
        return String(html[start.upperBound..<end.lowerBound])
    }

    /// Percent as the page prints it.
    func percent(_ v: Double) -> String { String(format: "%.1f %%", 100 * v) }

    // MARK: - The page's content

    func testReportShowsTheRunsFiguresAndEmbedsEverything() throws {
        let f = try fixture()
        let out = TestEnv.temporaryDirectory(self) + "/sub/report.html"
        let html = try report([f.run, f.allSegments, "--gallery", "2", "--title", "Two runs <&>"], out: out)

        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<title>Two runs &lt;&amp;&gt;</title>"), "the title is escaped")
        for id in Self.sectionIDs { XCTAssertTrue(html.contains("<section id=\"\(id)\">"), id) }

        // Nothing is fetched: every src is a data: URI, every href an anchor of the page.
        for m in matches(#"\b(src|href)\s*=\s*["']([^"']*)["']"#, in: html) {
            let value = m[2]
            XCTAssertTrue(value.hasPrefix("data:") || value.hasPrefix("#"), "\(m[1]) = \(value.prefix(80))")
        }
        XCTAssertTrue(matches(#"(src|href|url)\s*[=(]\s*["']?\s*(https?:)?//"#, in: html).isEmpty, "network reference in the page")

        // Corpus: the per-class counts of the store's manifest.
        let manifest = try json(f.store + "/manifest.json")
        let perClass = try XCTUnwrap(manifest["perClass"] as? [String: [String: Any]])
        let labels = try XCTUnwrap(manifest["labels"] as? [String])
        let corpus = try section("corpus", in: html)
        for l in labels {
            let c = try XCTUnwrap(perClass[l])
            let before = try XCTUnwrap(c["segmentsBefore"] as? Int), after = try XCTUnwrap(c["segmentsAfter"] as? Int)
            XCTAssertTrue(corpus.contains("<td>\(l)</td><td class=\"num\">\(c["files"] as! Int)</td><td class=\"num\">\(before)</td><td class=\"num\">\(after)</td><td class=\"num\">\(before - after)</td>"),
                          "row of \(l)")
        }

        // Evaluation: WA and UA recomputed here from the confusion matrix of evaluation.json.
        let evaluation = try json(f.run + "/evaluation.json")
        let files = try XCTUnwrap(evaluation["files"] as? [String: Any])
        let confusion = try XCTUnwrap(files["confusion"] as? [[Int]])
        let total = confusion.joined().reduce(0, +)
        let wa = Double(confusion.indices.map { confusion[$0][$0] }.reduce(0, +)) / Double(total)
        let recalls = confusion.indices.compactMap { i -> Double? in
            let n = confusion[i].reduce(0, +)
            return n == 0 ? nil : Double(confusion[i][i]) / Double(n)
        }
        let ua = recalls.reduce(0, +) / Double(recalls.count)
        let evalSection = try section("evaluation", in: html)
        XCTAssertTrue(evalSection.contains("WA \(percent(wa)), UA \(percent(ua))"), "file-level WA/UA")
        // The confusion heatmap shows every count (cell labels), one cell per pair of classes.
        XCTAssertEqual(matches(#"class="cell""#, in: evalSection).count, 2 * labels.count * labels.count, "files and segments matrices")

        // Training: Σ train_seconds and the number of epochs.
        let lines = try String(contentsOfFile: f.run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let seconds = try lines.map { try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["train_seconds"] as? Double) }
        XCTAssertTrue(try section("training", in: html).contains("2 epoch(s), \(formatDuration(seconds.reduce(0, +))) of training"))
        XCTAssertTrue(try section("configuration", in: html).contains("fusion-v1 ×0.125"))

        // Comparison: both runs, GDS on for the first, off for --all-segments, each with its own WA.
        let comparison = try section("comparison", in: html)
        let rows = matches(#"<tr><td>(gds|all)[^<]*(?:<span[^>]*>main</span>)?</td><td>([^<]*)</td><td>([^<]*)</td>.*?</tr>"#, in: comparison)
        XCTAssertEqual(rows.map { $0[1] }, ["gds", "all"], comparison)
        XCTAssertEqual(rows.first?[3].hasPrefix("on (T = "), true)
        XCTAssertEqual(rows.last?[3], "off (--all-segments)")
        let otherFiles = try XCTUnwrap(try json(f.allSegments + "/evaluation.json")["files"] as? [String: Any])
        let otherConfusion = try XCTUnwrap(otherFiles["confusion"] as? [[Int]])
        let otherWA = Double(otherConfusion.indices.map { otherConfusion[$0][$0] }.reduce(0, +)) / Double(otherConfusion.joined().reduce(0, +))
        XCTAssertTrue(rows.last?[0].contains("<td class=\"num\">\(percent(otherWA))</td>") ?? false, "WA of the second run")

        // Explanations: the gallery is capped at 2 files; one image per method, two players per Grad-CAM.
        let gallery = try section("explanations", in: html)
        if f.explained {
            XCTAssertEqual(matches(#"<img src="data:image/png;base64,"#, in: gallery).count, 2 * 2)
            XCTAssertEqual(matches(#"<audio controls preload="metadata" src="data:audio/wav;base64,"#, in: gallery).count, 2 * 2)
            // The embedded bytes are the files ser explain wrote.
            let index = try json(f.run + "/explanations/index.json")
            let stem = try XCTUnwrap((index["tasks"] as? [[String: Any]])?.first?["stem"] as? String)
            let png = try readFile("\(f.run)/explanations/gradcam/\(stem).png").base64EncodedString()
            XCTAssertTrue(gallery.contains("src=\"data:image/png;base64,\(png)\""))
            XCTAssertFalse(try section("faithfulness", in: html).contains("Not produced"))
            XCTAssertTrue(try section("faithfulness", in: html).contains("<td>gradcam</td>"))
            XCTAssertFalse(try section("profiles", in: html).contains("Not produced"))

            // --gallery 0 leaves the media out; the faithfulness table stays.
            let small = try report([f.run, "--gallery", "0"], out: out)
            XCTAssertFalse(small.contains("data:image/png"))
            XCTAssertFalse(small.contains("<audio"))
            XCTAssertLessThan(small.utf8.count, html.utf8.count)
        } else {
            XCTAssertTrue(gallery.contains("Not produced"))
        }
    }

    func testMissingAndDamagedPartsBecomeNotes() throws {
        let f = try fixture()
        let dir = TestEnv.temporaryDirectory(self)
        // A copy of the run whose store has "moved", without explanations, and a damaged evaluation.
        let run = dir + "/moved"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        var config = try json(f.run + "/config.json")
        var options = try XCTUnwrap(config["options"] as? [String: Any])
        options["features"] = dir + "/gone"
        config["options"] = options
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: run + "/config.json"))
        try FileManager.default.copyItem(atPath: f.run + "/metrics.jsonl", toPath: run + "/metrics.jsonl")
        try Data(#"{"files": {"labels": ["a", "b"], "confusion": [[1, 2]]}}"#.utf8).write(to: URL(fileURLWithPath: run + "/evaluation.json"))
        let unfinished = dir + "/unfinished"
        try FileManager.default.createDirectory(atPath: unfinished, withIntermediateDirectories: true)

        let out = dir + "/report.html"
        let r = try Command.ser(["report", run, unfinished, "--out", out])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("warning: feature store \(dir)/gone not found"), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(run)/evaluation.json: files.confusion is not a 2×2 matrix"), r.stderr)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        for id in Self.sectionIDs { XCTAssertTrue(html.contains("<section id=\"\(id)\">"), id) }
        for id in ["corpus", "evaluation", "explanations", "profiles", "faithfulness"] {
            XCTAssertTrue(try section(id, in: html).contains("Not produced"), id)
        }
        XCTAssertTrue(try section("explanations", in: html).contains("ser explain --run \(run) --split test"), "names the command")
        XCTAssertTrue(try section("training", in: html).contains("2 epoch(s)"), "the curves are still there")
        XCTAssertTrue(try section("comparison", in: html).contains("unfinished (\(unfinished)) is left out of the comparison"))

        // --features finds the moved store.
        let r2 = try Command.ser(["report", run, "--features", f.store, "--out", out])
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertFalse(try section("corpus", in: try String(contentsOfFile: out, encoding: .utf8)).contains("Not produced"))

        // Input mistakes are refused before any work, naming the culprit.
        let bad: [([String], String)] = [
            ([dir + "/nope", "--out", out], "\(dir)/nope: no such run directory"),
            ([unfinished, "--out", out], "no config.json there"),
            ([run, "--out", out, "--gallery=-1"], "--gallery must be 0 or more"),
            ([run, "--out", out, "--explanations", dir + "/none"], "--explanations \(dir)/none: no such directory"),
            ([run, "--out", run + "/config.json/x.html"], "is not a directory"),
        ]
        for (args, message) in bad {
            let e = try Command.ser(["report"] + args)
            XCTAssertNotEqual(e.status, 0, args.joined(separator: " "))
            XCTAssertTrue(e.stderr.contains(message), "\(args): \(e.stderr)")
        }
    }

    // MARK: - In a browser

    static var chromium: String? {
        if let p = ProcessInfo.processInfo.environment["SER_CHROMIUM"], FileManager.default.isExecutableFile(atPath: p) { return p }
        return ["chromium", "chromium-browser", "google-chrome"].lazy.compactMap { Command.which($0) }.first
    }

    func browser(_ extra: [String], page: String, profile: String) throws -> CommandResult {
        guard let chromium = Self.chromium else {
            throw XCTSkip("chromium is not installed (Cluster/install-deps.sh --with-browser installs it)")
        }
        return try Command.run(chromium, ["--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
                                          "--no-first-run", "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
                                          "--virtual-time-budget=10000"] + extra + ["file://" + page], timeout: 180)
    }

    func testPageLoadsInHeadlessChromiumWithoutErrors() throws {
        guard Self.chromium != nil else { throw XCTSkip("chromium is not installed (Cluster/install-deps.sh --with-browser installs it)") }
        let f = try fixture()
        let dir = TestEnv.temporaryDirectory(self)
        let page = dir + "/report.html"
        _ = try report([f.run, f.allSegments, "--gallery", "2"], out: page)

        let dom = try browser(["--dump-dom"], page: page, profile: dir + "/profile")
        XCTAssertEqual(dom.status, 0, dom.stderr)
        let html = dom.stdout
        for id in Self.sectionIDs { XCTAssertTrue(html.contains("<section id=\"\(id)\">"), "section \(id) in the rendered DOM") }
        XCTAssertFalse(html.contains("report-error\""), "errors recorded by the page: \(matches(#"<div class="report-error">([^<]*)"#, in: html).map { $0[1] })")
        // Console errors (uncaught exceptions, failed loads) as Chromium logs them.
        let console = dom.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        XCTAssertTrue(console.isEmpty, console.joined(separator: "\n"))
        // The load check ran and found every image decoded and every audio file readable.
        let images = try XCTUnwrap(matches(#"data-images="(\d+) total, (\d+) decoded""#, in: html).first, "the page's load check did not run")
        XCTAssertEqual(images[1], images[2])
        XCTAssertEqual(matches(#"data-charts="(\d+)""#, in: html).first.map { Int($0[1])! > 5 }, true, "inline charts")
        let audio = try XCTUnwrap(matches(#"data-audio="(\d+) total, (\d+) ready, (\d+) failed""#, in: html).first)
        XCTAssertEqual(audio[3], "0")
        if f.explained {
            XCTAssertEqual(images[1], "4")
            XCTAssertEqual(audio[1], "4")
            XCTAssertEqual(audio[2], "4", "Chromium read every WAV's header")
        }

        let shot = dir + "/shot.png"
        let r = try browser(["--screenshot=" + shot, "--window-size=1280,4000", "--hide-scrollbars"], page: page, profile: dir + "/profile")
        XCTAssertEqual(r.status, 0, r.stderr)
        let png = try Raster.readPNG(shot)
        XCTAssertEqual(png.width, 1280)
        XCTAssertGreaterThanOrEqual(png.height, 4000)
        // Not blank: text and charts cover part of the page, and charts bring colour.
        var ink = 0, colour = 0
        var seen = Set<UInt32>()
        for i in stride(from: 0, to: png.pixels.count, by: 4) {
            let (r, g, b) = (Int(png.pixels[i]), Int(png.pixels[i + 1]), Int(png.pixels[i + 2]))
            if r + g + b < 600 { ink += 1 }
            if max(r, g, b) - min(r, g, b) > 80 { colour += 1 }
            if seen.count < 5000 { seen.insert(UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b)) }
        }
        let n = png.width * png.height
        XCTAssertGreaterThan(Double(ink) / Double(n), 0.01, "hardly anything drawn")
        XCTAssertGreaterThan(colour, 2000, "no coloured charts")
        XCTAssertGreaterThan(seen.count, 200, "too few colours for a page of charts")
    }
}
