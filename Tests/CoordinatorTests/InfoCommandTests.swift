import Foundation
import Shared
import TestSupport
import XCTest

/// `ser info` as users run it: alone and under mpirun.
final class InfoCommandTests: XCTestCase {
    func testLocalModeIsAWorldOfOneWithTheFastestKernel() throws {
        // The environment may pin a slower kernel (this machine sets OPENBLAS_CORETYPE=Haswell):
        // ser must still run with the fastest one the CPU supports.
        let r = try Command.ser(["info", "--json"], environment: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertEqual(r.status, 0, r.output)
        let facts = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: String] ?? [:]
        XCTAssertEqual(facts["MPI world"], "1 process (local mode, no mpirun)")
        if let best = BLASKernel.fastestSupported() {
            XCTAssertTrue(facts["BLAS kernel"]?.hasPrefix(best) == true || facts["BLAS kernel"]?.hasPrefix("Cooperlake") == true,
                          "kernel \(facts["BLAS kernel"] ?? "?") but the CPU supports \(best)")
        }
        // Whether --precision bf16 runs here, as the engine itself decides.
        XCTAssertEqual(facts["bf16 matrix products"]?.hasPrefix("available"), MatmulPrecision.bf16Available, facts["bf16 matrix products"] ?? "missing")
        for key in ["MPI", "BLAS", "FFT", "audio I/O", "resampler", "compression", "images"] {
            XCTAssertNotNil(facts[key], "missing \(key)")
        }
    }

    func testForcedKernelIsRespected() throws {
        guard BLASKernel.fastestSupported() != nil else { throw XCTSkip("CPU without AVX") }
        let r = try Command.ser(["info", "--json"], environment: ["SER_BLAS_CORETYPE": "Haswell"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("Haswell — forced by SER_BLAS_CORETYPE"), r.stdout)
    }

    func testMPIWorldOfTwoPassesEveryCommunicationCheck() throws {
        let r = try Command.mpirun(2, ["info", "--check"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("2 ranks (MPI)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("check  ok    send/receive ring"), r.stdout)
        XCTAssertFalse(r.stdout.contains("FAIL"), r.stdout)
    }

    func testUnevenWorldOfThree() throws {
        let r = try Command.mpirun(3, ["info", "--check"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("3 ranks (MPI)"), r.stdout)
        XCTAssertFalse(r.stdout.contains("FAIL"), r.stdout)
    }

    func testBadOptionGetsAMessageNotACrash() throws {
        let r = try Command.ser(["info", "--threads", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--threads must be at least 1"), r.stderr)
    }
}
