import Foundation
import Shared
import TestSupport
import XCTest

/// `ser train` as users run it: alone, with --ranks, under mpirun, resumed, supervised, broken.
/// A small synthetic store and a narrow fusion-v1 (width 0.125) keep each run to seconds.
final class TrainCommandTests: XCTestCase {
    nonisolated(unsafe) static var root = ""
    nonisolated(unsafe) static var store = ""

    override class func setUp() {
        super.setUp()
        root = NSTemporaryDirectory() + "ser-train-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        store = root + "/store"
        _ = try? Command.ser(["synth", "--out", root + "/corpus", "--files-per-class", "40", "--quiet"])
        _ = try? Command.ser(["preprocess", "--corpus", "synth:" + root + "/corpus", "--out", store, "--quiet"])
    }

    override class func tearDown() {
        if ProcessInfo.processInfo.environment["SER_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: root) }
        super.tearDown()
    }

    /// Deterministic mode: these tests compare weights bit for bit (users get fast mode by default).
    let small = ["--width", "0.125", "--learning-rate", "0.001", "--mode", "deterministic", "--quiet"]

    func run(_ name: String) -> String { TrainCommandTests.root + "/" + name + "-\(UInt32.random(in: 0 ... .max))" }

    @discardableResult
    func train(_ out: String, _ extra: [String], ranks: Int = 1, expectSuccess: Bool = true) throws -> CommandResult {
        let args = ["train", "--features", TrainCommandTests.store, "--out", out] + small + extra
        let r = ranks == 1 ? try Command.ser(args) : try Command.mpirun(ranks, args)
        if expectSuccess { XCTAssertEqual(r.status, 0, r.output) }
        return r
    }

    /// Tensor bytes of a run's final weights (metadata such as the rank count left out).
    func weights(_ run: String) throws -> [String: Data] {
        try SafeTensors.read(path: run + "/weights.safetensors").tensors.mapValues(\.data)
    }

    func maxRelativeDifference(_ a: [String: Data], _ b: [String: Data]) -> Double {
        worstTensor(a, b).difference
    }

    /// The tensor whose largest difference, relative to its largest magnitude, is greatest.
    /// `floor` bounds the scale from below: a tensor that starts at zero (batch norm's β) holds
    /// only a few Adam steps after a short run, so its own magnitude is no yardstick.
    func worstTensor(_ a: [String: Data], _ b: [String: Data], floor: Double = 1e-12) -> (name: String, difference: Double) {
        var worst = ("", 0.0)
        for (k, da) in a {
            guard let db = b[k], da.count == db.count else { return (k, .infinity) }
            let fa = da.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, fb = db.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let scale = max(floor, fb.map { abs(Double($0)) }.max() ?? 0)
            let d = (zip(fa, fb).map { abs(Double($0) - Double($1)) }.max() ?? 0) / scale
            if d > worst.1 { worst = (k, d) }
        }
        return worst
    }

    func testOneTwoAndThreeRanksGiveBitwiseTheSameWeights() throws {
        let one = run("one"), two = run("two"), three = run("three")
        try train(one, ["--epochs", "2"])
        try train(two, ["--epochs", "2"], ranks: 2)
        try train(three, ["--epochs", "2"], ranks: 3)   // 16 shards over 3 ranks: 5, 5 and 6 per rank
        let w1 = try weights(one)
        XCTAssertEqual(w1, try weights(two), "2 ranks differ from 1")
        XCTAssertEqual(w1, try weights(three), "3 ranks differ from 1")
        // The runs did learn something (the weights moved from their initial values).
        let metrics = try String(contentsOfFile: one + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 2)
    }

    /// Fast mode sums with MPI's allreduce and one GEMM per rank: gradients equal up to float32
    /// rounding. Adam divides each update by its gradient's running magnitude, so rounding in a
    /// near-zero gradient entry can change that entry's update sign: after one epoch (3 updates)
    /// the weights differ by at most ~1 % of each tensor's largest magnitude (0.3–0.7 % measured).
    /// Tensors that start at zero (batch norm's β) are measured against ten Adam steps of the
    /// learning rate instead (10 × 3 × 0.001): after 3 steps their own largest entry is ≈ 3 steps,
    /// and a rounding difference of a tenth of one step in a near-zero entry measured 3–4 % of that.
    func testFastModeDiffersOnlyByRounding() throws {
        let det = run("det"), fast = run("fast")
        try train(det, ["--epochs", "1"])
        let r = try train(fast, ["--epochs", "1", "--mode", "fast"], ranks: 2)
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(try String(contentsOfFile: fast + "/config.json", encoding: .utf8).contains("\"fast\""), "the later --mode wins")
        let (tensor, d) = worstTensor(try weights(fast), try weights(det), floor: 10 * 3 * 0.001)
        print("fast vs deterministic after one epoch: max relative difference \(d) (\(tensor))")
        XCTAssertGreaterThan(d, 0, "two different reduction orders")
        XCTAssertLessThan(d, 0.02)
    }

    func testResumeWithAnotherRankCountIsBitwiseIdentical() throws {
        let whole = run("whole"), parts = run("parts")
        try train(whole, ["--epochs", "2"])
        // Stop mid-epoch 2 (3 batches per epoch), then continue with 3 ranks instead of 2.
        try train(parts, ["--epochs", "2", "--max-steps", "4"], ranks: 2)
        let r = try Command.mpirun(3, ["train", "--resume", parts, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try weights(whole), try weights(parts))
    }

    func testKillingARankUnderTheSupervisorStillEndsWithTheSameWeights() throws {
        let reference = run("reference"), killed = run("killed")
        let extra = ["--epochs", "5", "--checkpoint-every", "1"]
        try train(reference, extra)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestEnv.serBinary)
        p.arguments = ["supervise", "--max-restarts", "2", "--backoff", "0.5", "--", "ser", "train", "--features", TrainCommandTests.store,
                       "--out", killed, "--ranks", "2"] + small + extra
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        let errPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Wait for step 5's checkpoint (epoch 2 of 5), then SIGKILL one training rank.
        let deadline = Date().addingTimeInterval(300)
        var victim: Int32?
        while victim == nil && Date() < deadline && p.isRunning {
            if Checkpoint.list(killed + "/checkpoints").contains(where: { $0.contains("ckpt-step000000005") }) {
                victim = Self.trainingRanks(outDir: killed).last
            }
            usleep(20_000)
        }
        XCTAssertNotNil(victim, "no training rank found to kill")
        if let victim { kill(victim, SIGKILL) }
        let log = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: log, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("supervise: restart 1/2"), text)
        XCTAssertEqual(try weights(reference), try weights(killed), "the restarted run must end bit for bit like the uninterrupted one")
    }

    /// PIDs of `ser train` rank processes writing to `outDir` (not the launcher or supervisor).
    static func trainingRanks(outDir: String) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return pids.filter { pid in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let args = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return args.contains("train") && args.contains(outDir) && !args.contains("--ranks") && !args.contains("supervise")
                && !(args.first ?? "").hasSuffix("mpirun") && !(args.first ?? "").hasSuffix("orterun")
        }.sorted()
    }

    func testTruncatedNewestCheckpointIsReportedAndThePreviousOneUsed() throws {
        let whole = run("whole2"), broken = run("broken")
        try train(whole, ["--epochs", "2"])
        try train(broken, ["--epochs", "2", "--max-steps", "5", "--checkpoint-every", "2"])
        let newest = Checkpoint.list(broken + "/checkpoints").last!
        XCTAssertTrue(newest.contains("step000000005"), newest)
        let bytes = try readFile(newest)
        try AtomicFile.write(Data(bytes.prefix(bytes.count - 1000)), to: newest)
        let r = try Command.ser(["train", "--resume", broken])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("ckpt-step000000005") && r.stderr.contains("unusable"), r.stderr)
        XCTAssertTrue(r.stderr.contains("resuming from") && r.stderr.contains("step000000004"), r.stderr)
        XCTAssertEqual(try weights(whole), try weights(broken))
    }

    func testCheckpointOfAnotherConfigurationIsRefusedSayingWhatDiffers() throws {
        let a = run("config")
        try train(a, ["--epochs", "1", "--max-steps", "2"])
        // Edit the saved configuration as if the run had used another model and learning rate.
        var cfg = try String(contentsOfFile: a + "/config.json", encoding: .utf8)
        cfg = cfg.replacingOccurrences(of: "\"fusion-v1\"", with: "\"vggish-only\"")
        cfg = cfg.replacingOccurrences(of: "\"learningRate\" : 0.001", with: "\"learningRate\" : 0.01")
        try AtomicFile.write(cfg, to: a + "/config.json")
        let r = try Command.ser(["train", "--resume", a])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("architecture: checkpoint has fusion-v1, this run has vggish-only"), r.stderr)
        XCTAssertTrue(r.stderr.contains("learning rate: checkpoint has 0.001, this run has 0.01"), r.stderr)
    }

    func testDivergingRankIsNamed() throws {
        let r = try train(run("diverge"), ["--epochs", "2", "--checksum-every", "2", "--inject-divergence", "1@3"], ranks: 2, expectSuccess: false)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("parameters diverged at step 4: rank(s) 1 disagree"), r.output)
    }

    func testWatchdogEndsAJobWhoseRankStoppedAndNamesIt() throws {
        let out = run("hang")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Command.which("mpirun")!)
        p.arguments = ["-np", "2", "--oversubscribe", TestEnv.serBinary, "train", "--features", TrainCommandTests.store, "--out", out,
                       "--epochs", "20", "--checkpoint-every", "1", "--watchdog", "5"] + small
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        let errPipe = Pipe(), outPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = outPipe
        try p.run()
        var stopped: Int32?
        let deadline = Date().addingTimeInterval(120)
        while stopped == nil && Date() < deadline && p.isRunning {
            if Checkpoint.list(out + "/checkpoints").contains(where: { $0.contains("ckpt-step000000003") }),
               let victim = Self.trainingRanks(outDir: out).last {
                kill(victim, SIGSTOP)
                stopped = victim
            }
            usleep(20_000)
        }
        let started = Date()
        let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
        _ = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if let stopped { kill(stopped, SIGKILL) }
        let text = String(decoding: errData, as: UTF8.self)
        XCTAssertNotNil(stopped)
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "the watchdog should end the job within seconds")
        XCTAssertTrue(text.contains("watchdog: rank 0") && text.contains("no heartbeat from rank 1"), text)
    }

    func testNonFiniteLossStopsNamingTheStepAndLayerAndKeepsGoodWeights() throws {
        let out = run("nan")
        let r = try Command.ser(["train", "--features", TrainCommandTests.store, "--out", out, "--width", "0.125", "--epochs", "2",
                                 "--learning-rate", "1e38", "--quiet"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("training stopped at step"), r.stderr)
        XCTAssertTrue(r.stderr.contains("non-finite values first appear in"), r.stderr)
        XCTAssertTrue(r.stderr.contains("weights-last-good.safetensors"), r.stderr)
        // The saved weights are finite and load into the model.
        let good = try SafeTensors.read(path: out + "/weights-last-good.safetensors")
        XCTAssertTrue(good.tensors.values.allSatisfy { $0.floats().allSatisfy(\.isFinite) })
    }

    func testWrongPretrainedWeightsAreRefusedNamingTensorsAndShapes() throws {
        let bad = TestEnv.temporaryDirectory(self) + "/bad.safetensors"
        var st = SafeTensors()
        st["layer1/conv/kernel"] = StoredTensor([Float](repeating: 0, count: 9 * 16), shape: [3, 3, 1, 16])
        try st.write(path: bad)
        let r = try Command.ser(["train", "--features", TrainCommandTests.store, "--out", run("badw"), "--yamnet-weights", bad, "--epochs", "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("tensor layer1/conv/kernel has shape [3, 3, 1, 16], the model needs [3, 3, 1, 32]"), r.stderr)
        XCTAssertTrue(r.stderr.contains("missing tensor layer14/pointwise_conv/kernel"), r.stderr)
    }
}
