import Foundation
import Shared
import TestSupport
import XCTest

/// The built-in synthetic corpus is learnable: a shortened fusion-v1 run passes 90 % file-level
/// accuracy (the full default run is documented in docs/RESULTS.md).
final class TrainingConvergenceTests: XCTestCase {
    func testSyntheticCorpusPassesNinetyPercentFileLevelAccuracy() throws {
        try converge(precision: "fp32")
    }

    /// The bf16 path (AMX tiles or AVX512-BF16) keeps the accuracy; a CPU without them refuses it with a message.
    func testBF16PathPassesNinetyPercentOrIsRefusedClearly() throws {
        guard MatmulPrecision.bf16Available else {
            let dir = TestEnv.temporaryDirectory(self, "ser-bf16-refused")
            _ = try Command.ser(["synth", "--out", dir + "/corpus", "--files-per-class", "4", "--quiet"])
            _ = try Command.ser(["preprocess", "--corpus", "synth:" + dir + "/corpus", "--out", dir + "/store", "--quiet"])
            let r = try Command.ser(["train", "--features", dir + "/store", "--out", dir + "/run", "--precision", "bf16", "--epochs", "1"])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("--precision bf16 needs AVX512-BF16"), r.stderr)
            return
        }
        try converge(precision: "bf16")
    }

    func converge(precision: String) throws {
        let dir = TestEnv.temporaryDirectory(self, "ser-converge-" + precision)
        var r = try Command.ser(["synth", "--out", dir + "/corpus", "--files-per-class", "100", "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        r = try Command.ser(["preprocess", "--corpus", "synth:" + dir + "/corpus", "--out", dir + "/store", "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        // Shortened: a quarter of the channels and a smaller learning rate than the paper's 0.01,
        // which converges in fewer steps on this small corpus.
        r = try Command.ser(["train", "--features", dir + "/store", "--out", dir + "/run", "--width", "0.25",
                             "--learning-rate", "0.001", "--epochs", "12", "--ranks", "2", "--precision", precision])
        XCTAssertEqual(r.status, 0, r.output)
        let eval = try JSONSerialization.jsonObject(with: try readFile(dir + "/run/evaluation.json")) as? [String: Any]
        let files = eval?["files"] as? [String: Any]
        let confusion = files?["confusion"] as? [[Int]] ?? []
        let total = confusion.flatMap { $0 }.reduce(0, +)
        let correct = confusion.indices.reduce(0) { $0 + confusion[$1][$1] }
        XCTAssertEqual(total, 60)
        let accuracy = Double(correct) / Double(max(1, total))
        print("synthetic corpus, \(precision), file-level accuracy after 12 epochs: \(accuracy)")
        XCTAssertTrue(r.stderr.contains("\(precision) matrix products"), r.stderr)
        XCTAssertGreaterThan(accuracy, 0.9, r.stderr)
        // A person saw progress: per-epoch lines with loss and speed, and the validation figures.
        XCTAssertTrue(r.stderr.contains("epoch 12/12: loss"), r.stderr)
        XCTAssertTrue(r.stderr.contains("validation: segments WA"), r.stderr)
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 12)
    }
}
