import Foundation
import Shared
import TestSupport
import XCTest

/// `ser demo` and `ser experiment` drive the other commands as child processes; these run them
/// shortened (tiny corpus, one epoch, a narrow network) through the same code path a user takes.
final class ExperimentCommandTests: XCTestCase {
    func testExperimentComparesGDSOnAndOffAndKeepsFinishedRuns() throws {
        let dir = TestEnv.temporaryDirectory(self, "ser-experiment")
        var r = try Command.ser(["synth", "--out", dir + "/corpus", "--files-per-class", "12", "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        let args = ["experiment", "--corpus", "synth:" + dir + "/corpus", "--out", dir + "/exp", "--epochs", "1",
                    "--width", "0.125", "--learning-rate", "0.001", "--splits", "random", "--models", "fusion-v1,yamnet-only",
                    "--explain-files", "1", "--lime-samples", "20"]
        r = try Command.ser(args, timeout: 1200)
        XCTAssertEqual(r.status, 0, r.output)
        let results = try String(contentsOfFile: dir + "/exp/results.md", encoding: .utf8)
        for run in ["fusion-v1_gds_random", "fusion-v1_nogds_random", "yamnet-only_gds_random"] {
            XCTAssertTrue(results.contains("| \(run) |"), results)
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/exp/runs/\(run)/evaluation.json"), run)
        }
        XCTAssertTrue(results.contains("GDS: training time"), results)
        XCTAssertTrue(results.contains("removed)"), results)
        // The run without GDS trained on every segment; the run with it on fewer.
        let on = try firstMetrics(dir + "/exp/runs/fusion-v1_gds_random"), off = try firstMetrics(dir + "/exp/runs/fusion-v1_nogds_random")
        XCTAssertLessThan(on, off)
        // The main run was explained and the report written.
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/exp/runs/fusion-v1_gds_random/explanations/index.json"))
        let html = try String(contentsOfFile: dir + "/exp/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("fusion-v1_nogds_random"))
        // Again: nothing is trained twice.
        r = try Command.ser(args, timeout: 600)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.stderr.components(separatedBy: "finished earlier, kept").count - 1, 3, r.stderr)
    }

    func testDemoRunsEveryStageAndWritesTheReport() throws {
        let dir = TestEnv.temporaryDirectory(self, "ser-demo")
        let r = try Command.ser(["demo", "--out", dir, "--files-per-class", "10", "--epochs", "1", "--width", "0.125",
                                 "--ranks", "2", "--explain-files", "2"], timeout: 1200)
        XCTAssertEqual(r.status, 0, r.output)
        for stage in 1...5 { XCTAssertTrue(r.stderr.contains("[\(stage)/5]"), r.stderr) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/weights.safetensors"))
        let index = try JSONSerialization.jsonObject(with: try readFile(dir + "/run/explanations/index.json"))
        XCTAssertNotNil(index)
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Grad-CAM"), "the report shows the explanations")
    }

    /// Segments seen in the first epoch, from the run's metrics.
    private func firstMetrics(_ run: String) throws -> Int {
        let line = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        return (obj?["train_segments"] as? Int) ?? -1
    }
}
