import Foundation
import Shared
import TestSupport
import XCTest

/// The benchmark commands run end to end on a narrow network and print figures that make sense.
/// (Their speed is recorded in BENCHMARKS.md, never asserted here.)
final class BenchCommandTests: XCTestCase {
    /// The first number after `label` in `text`.
    func number(after label: String, in text: String) -> Double? {
        guard let start = label.isEmpty ? text.startIndex : text.range(of: label)?.upperBound else { return nil }
        let tail = text[start...].drop { !"0123456789.".contains($0) }
        return Double(tail.prefix { "0123456789.".contains($0) })
    }

    func testTrainAndInferReportSpeedAgainstThePeak() throws {
        for kind in ["train", "infer"] {
            let r = try Command.ser(["bench", kind, "--width", "0.125", "--batch", "16", "--steps", "1", "--warmup", "0"])
            XCTAssertEqual(r.status, 0, r.output)
            let speed = r.stdout.split(separator: "\n").first { $0.contains("segments/s  (") }.map(String.init) ?? ""
            XCTAssertGreaterThan(number(after: "", in: speed) ?? 0, 0, r.stdout)
            XCTAssertTrue(r.stdout.contains("of the measured sgemm peak"), r.stdout)
            XCTAssertGreaterThan(number(after: "peak resident memory", in: r.stdout) ?? 0, 10, r.stdout)
        }
    }

    func testCheckpointReportsSizeAgainstRawFloat32AndRoundTrips() throws {
        let dir = TestEnv.temporaryDirectory(self, "ser-bench-ckpt")
        let r = try Command.ser(["bench", "checkpoint", "--width", "0.125", "--steps", "1", "--repeats", "1", "--dir", dir])
        XCTAssertEqual(r.status, 0, r.output)
        let compressed = try XCTUnwrap(number(after: "size", in: r.stdout)), raw = try XCTUnwrap(number(after: "compressed vs", in: r.stdout))
        XCTAssertGreaterThan(compressed, 0)
        XCTAssertLessThan(compressed, raw * 1.01, "zstd must not grow the checkpoint")
        XCTAssertTrue(r.stdout.contains("read (zstd, checksums, decode)"), r.stdout)
        // What was timed is a real checkpoint: it restores with ser's own reader.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(Checkpoint.suffix) }
        XCTAssertEqual(files.count, 1)
        XCTAssertEqual(try Checkpoint.read(dir + "/" + files[0]).state.step, 1)
    }

    func testScalingComparesTheThreeConfigurations() throws {
        guard Command.which("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        let r = try Command.ser(["bench", "scaling", "--width", "0.125", "--steps", "1", "--ranks", "2", "--rounds", "2"], timeout: 600)
        XCTAssertEqual(r.status, 0, r.output)
        for line in ["1 rank × 1 thread", "1 rank × 2 threads", "2 ranks × 1 thread"] {
            XCTAssertEqual(r.stdout.split(separator: "\n").filter { $0.hasPrefix(line) }.count, 2, "one line per round: \(r.stdout)")
        }
        XCTAssertTrue(r.stdout.contains("round 2:"), r.stdout)
        // The reported figure is the median of the rounds' ratios, so it lies within their range.
        let median = number(after: "scaling: 2 ranks × 1 thread =", in: r.stdout) ?? 0
        let low = number(after: "(rounds", in: r.stdout) ?? .infinity
        XCTAssertGreaterThan(median, 0.3, r.stdout)
        XCTAssertGreaterThanOrEqual(median, low, r.stdout)
    }

    /// The wait a data-parallel step reports counts the batch-norm collectives (every YAMNet
    /// batch norm meets the other ranks twice a step), not only the gradient exchange.
    func testWaitIncludesBatchNormStatistics() throws {
        guard Command.which("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        let r = try Command.mpirun(2, ["bench", "train", "--json", "--width", "0.125", "--batch", "16", "--steps", "2", "--warmup", "1", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.output)
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        let total = result["communicationWaitFraction"] as? Double ?? -1, statistics = result["statisticsWaitFraction"] as? Double ?? -1
        XCTAssertGreaterThan(statistics, 0, line)
        XCTAssertLessThanOrEqual(statistics, total, line)
        XCTAssertLessThan(total, 1, line)
    }
}
