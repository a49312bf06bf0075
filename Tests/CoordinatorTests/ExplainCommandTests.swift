import Foundation
import Shared
import TestSupport
import XCTest

/// `ser explain` as users run it, on a tiny model trained in the fixture with `ser train`: the
/// outputs of one process, the farm under real `mpirun -np 2`, failing tasks, a job whose worker
/// is killed and its rerun, the refusal of a store made with another front end or class set, and
/// `ser bench explain`.
final class ExplainCommandTests: XCTestCase {
    struct Fixture {
        let dir: String, corpus: String, store: String, run: String
    }

    nonisolated(unsafe) static var fixture: Result<Fixture, Error>?

    /// synth → preprocess → train (width 0.125, 2 epochs): once for the whole class.
    func fixture() throws -> Fixture {
        if let f = Self.fixture { return try f.get() }
        let result = Result<Fixture, Error> {
            let dir = NSTemporaryDirectory() + "ser-explain-fixture-\(getpid())"
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let f = Fixture(dir: dir, corpus: dir + "/corpus", store: dir + "/store", run: dir + "/run")
            for args in [["synth", "--out", f.corpus, "--files-per-class", "8", "--speakers", "2", "--duration", "1.5", "--seed", "3"],
                         ["preprocess", "--corpus", "synth:" + f.corpus, "--out", f.store, "--shards", "2"],
                         ["train", "--features", f.store, "--out", f.run, "--width", "0.125", "--epochs", "2", "--batch", "16",
                          "--learning-rate", "0.001", "--quiet"]] {
                let r = try Command.ser(args)
                guard r.status == 0 else { throw FileError("fixture: ser \(args[0]) failed: \(r.output)") }
            }
            return f
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

    func tasks(_ out: String) throws -> [[String: Any]] {
        try XCTUnwrap(try json(out + "/index.json")["tasks"] as? [[String: Any]])
    }

    func modified(_ path: String) throws -> Date {
        try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
    }

    // MARK: - One process

    func testOneProcessOutputsAndRerunSkipsFinishedTasks() throws {
        let f = try fixture()
        let out = TestEnv.temporaryDirectory(self) + "/explain"
        let args = ["explain", "--run", f.run, "--split", "test", "--lime-samples", "40", "--faithfulness-steps", "4", "--out", out]
        var r = try Command.ser(args)
        XCTAssertEqual(r.status, 0, r.output)
        let store = try FeatureStore.open(f.store)
        let testFiles = store.split(.random).test
        XCTAssertGreaterThanOrEqual(testFiles.count, 3)
        XCTAssertTrue(r.stderr.contains("\(testFiles.count) file(s) × 3 method(s) = \(3 * testFiles.count) tasks"), r.stderr)
        XCTAssertTrue(r.stdout.contains("deletion AUC") && r.stdout.contains("occlusion"), r.stdout)

        let index = try json(out + "/index.json")
        XCTAssertEqual(index["counts"] as? [String: Int], ["ok": 3 * testFiles.count, "failed": 0, "pending": 0])
        XCTAssertEqual(index["labels"] as? [String], store.labels)

        // The file-level probabilities are the evaluation's (same model, same kept segments): an
        // independent check that the right file was explained with the right model.
        let evaluation = try json(f.run + "/evaluation.json")
        let predictions = try XCTUnwrap(evaluation["filePredictions"] as? [[String: Any]])
        let reader = store.makeReader()
        var checkedEvaluation = 0
        for task in try tasks(out) {
            let method = try XCTUnwrap(task["method"] as? String), stem = try XCTUnwrap(task["stem"] as? String)
            let id = try XCTUnwrap(task["file"] as? Int)
            let base = "\(out)/\(method)/\(stem)"
            let record = try json(base + ".json")
            XCTAssertEqual(record["status"] as? String, "ok")
            XCTAssertEqual(record["label"] as? String, store.files[id].label)
            XCTAssertEqual(Set((record["probabilities"] as? [String: Double] ?? [:]).keys), Set(store.labels))
            XCTAssertGreaterThan((record["timing"] as? [String: Any])?["forwardPasses"] as? Int ?? 0, 0)
            XCTAssertNotNil(record["faithfulness"] as? [String: Any])
            XCTAssertNotNil(record["pointing"] as? [String: Any], "the synthetic corpus has cue boxes")

            let st = try SafeTensors.read(path: base + ".safetensors")
            let segs = Array(store.files[id].segments)
            let starts = segs.map { store.segment($0).startFrame }
            let frames = starts.max()! + 96
            XCTAssertEqual(try st.require("map").shape, [frames, 64])
            XCTAssertEqual(try st.require("patch_maps").shape, [segs.count, 96, 64])
            XCTAssertEqual(try st.require("start_frames").int64s().map(Int.init), starts)
            // The spectrogram under the map is the store's own segments.
            let logMel = try st.require("log_mel").floats()
            for (k, s) in segs.enumerated() {
                let seg = try reader.read(s)
                XCTAssertEqual(Array(logMel[(starts[k] * 64)..<((starts[k] + 96) * 64)]), seg, "\(stem) segment \(k)")
            }
            let map = try st.require("map").floats()
            XCTAssertTrue(map.allSatisfy(\.isFinite))
            if method == "gradcam" {
                XCTAssertTrue(map.allSatisfy { $0 >= 0 }, "Grad-CAM maps are ReLU'd")
                XCTAssertEqual(try st.require("coarse_maps").shape, [segs.count, 6, 4])
            }
            if let p = predictions.first(where: { $0["file"] as? Int == id }) {
                let expected = try XCTUnwrap(p["probabilities"] as? [Double])
                let ours = try st.require("file_probabilities").doubles()
                for (a, b) in zip(ours, expected) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(stem) file probabilities") }
                checkedEvaluation += 1
            }
            let png = try Raster.readPNG(base + ".png")
            XCTAssertGreaterThan(png.width, 200)
            XCTAssertGreaterThan(png.height, 150)
            if method == "gradcam" {
                // The audible versions: the original's length and rate; the gated one is the
                // original where kept and silence elsewhere (ramps in between).
                let original = try AudioFile.read(store.files[id].path)
                for kind in ["audible", "masked"] {
                    let wav = try AudioFile.read(base + ".\(kind).wav")
                    XCTAssertEqual(wav.sampleRate, 16000)
                    XCTAssertEqual(wav.samples.count, original.samples.count, kind)
                }
                let gated = try AudioFile.read(base + ".audible.wav").samples
                for i in stride(from: 0, to: gated.count, by: 7) {
                    XCTAssertLessThanOrEqual(abs(gated[i]), abs(original.samples[i]) + 2 / 32768, "sample \(i)")
                }
            }
        }
        XCTAssertGreaterThan(checkedEvaluation, 0)
        let profiles = try json(out + "/profiles.json")
        XCTAssertFalse((profiles["profiles"] as? [String: [Double]] ?? [:]).isEmpty)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/profiles.svg"))
        let faithfulness = try XCTUnwrap(try json(out + "/faithfulness.json")["methods"] as? [[String: Any]])
        XCTAssertEqual(faithfulness.compactMap { $0["method"] as? String }, ["gradcam", "lime", "occlusion"])

        // The same command again: nothing to do, nothing rewritten.
        let someJSON = "\(out)/lime/\(try XCTUnwrap(try tasks(out).first?["stem"] as? String)).json"
        let before = try modified(someJSON)
        r = try Command.ser(args)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("\(3 * testFiles.count) already done, 0 to do"), r.stderr)
        XCTAssertEqual(try modified(someJSON), before)
        // Another LIME setting: only LIME is recomputed.
        r = try Command.ser(args.map { $0 == "40" ? "30" : $0 })
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("\(2 * testFiles.count) already done, \(testFiles.count) to do"), r.stderr)
        XCTAssertNotEqual(try modified(someJSON), before)

        r = try Command.ser(["explain", "--summary", "--out", out])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(["gradcam", "lime", "occlusion", "pointing game"].allSatisfy(r.stdout.contains), r.stdout)
    }

    // MARK: - MPI

    /// Under `mpirun -np 2` both ranks compute tasks, and the maps equal one process's.
    func testTwoRankFarmMatchesOneProcess() throws {
        let f = try fixture()
        let dir = TestEnv.temporaryDirectory(self)
        let args = ["explain", "--run", f.run, "--split", "all", "--limit", "8", "--methods", "gradcam,occlusion", "--no-faithfulness", "--no-audio"]
        var r = try Command.mpirun(2, args + ["--out", dir + "/two"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("16 tasks on 2 rank(s)"), r.stderr)
        let two = try tasks(dir + "/two")
        XCTAssertEqual(two.count, 16)
        XCTAssertTrue(two.allSatisfy { $0["status"] as? String == "ok" })
        XCTAssertEqual(Set(two.compactMap { $0["rank"] as? Int }), [0, 1], "both ranks computed tasks")
        r = try Command.ser(args + ["--out", dir + "/one"])
        XCTAssertEqual(r.status, 0, r.output)
        for t in two {
            let name = "\(t["method"] as! String)/\(t["stem"] as! String).safetensors"
            let a = try SafeTensors.read(path: "\(dir)/two/\(name)").require("map").floats()
            let b = try SafeTensors.read(path: "\(dir)/one/\(name)").require("map").floats()
            let scale = max(1e-6, b.map(abs).max()!)
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * scale, name) }
        }
    }

    /// A manifest with two good files, a corrupt one and a missing one: the bad tasks fail with
    /// their reasons, the others finish; the status is 3. The good files' probabilities equal the
    /// evaluation's (the run's front end and segmenting applied to the audio).
    func testFailingTasksAreRecordedAndTheOthersFinish() throws {
        let f = try fixture()
        let dir = TestEnv.temporaryDirectory(self)
        let store = try FeatureStore.open(f.store)
        let evaluation = try json(f.run + "/evaluation.json")
        let predictions = try XCTUnwrap(evaluation["filePredictions"] as? [[String: Any]])
        let good = predictions.prefix(2).map { store.files[$0["file"] as! Int] }
        try Data("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt this is not audio".utf8).write(to: URL(fileURLWithPath: dir + "/corrupt.wav"))
        var csv = "path,label,speaker\n"
        for g in good { csv += "\(g.path),\(g.label),x\n" }
        csv += "corrupt.wav,sad,x\nmissing.wav,happy,x\n"
        try csv.write(toFile: dir + "/list.csv", atomically: true, encoding: .utf8)
        let args = ["explain", "--run", f.run, "--manifest", dir + "/list.csv", "--methods", "gradcam,occlusion", "--no-faithfulness",
                    "--out", dir + "/out"]
        var r = try Command.mpirun(2, args)
        XCTAssertEqual(r.status, 3, r.output)
        let list = try tasks(dir + "/out")
        XCTAssertEqual(list.count, 8)
        let failed = list.filter { $0["status"] as? String == "failed" }
        XCTAssertEqual(failed.count, 4)
        for t in failed {
            let reason = t["reason"] as? String ?? ""
            if (t["path"] as? String ?? "").hasSuffix("corrupt.wav") {
                XCTAssertTrue(reason.contains("corrupt.wav"), reason)
            } else {
                XCTAssertTrue(reason.contains("no such file"), reason)
            }
        }
        XCTAssertTrue(r.stderr.contains("warning: gradcam"), r.stderr)
        for g in good {
            let stem = String(g.path.dropFirst().replacingOccurrences(of: "/", with: "__").dropLast(4))
            let st = try SafeTensors.read(path: "\(dir)/out/gradcam/\(stem).safetensors")
            let expected = predictions.first { $0["file"] as? Int == g.id }!["probabilities"] as! [Double]
            for (a, b) in zip(try st.require("file_probabilities").doubles(), expected) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/out/gradcam/\(stem).masked.wav"))
        }
        // Again: the good tasks are reused, the failed ones tried again.
        r = try Command.mpirun(2, args)
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.stderr.contains("4 already done, 4 to do"), r.stderr)
    }

    /// A worker killed mid-job ends the job; the tasks finished before are on disk, whole, and the
    /// same command run again does only the rest.
    func testKilledWorkerLeavesFinishedTasksAndRerunCompletes() throws {
        let f = try fixture()
        guard let mpirun = Command.which("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let dir = TestEnv.temporaryDirectory(self)
        let out = dir + "/out-killed"
        let args = ["explain", "--run", f.run, "--split", "all", "--limit", "10", "--methods", "lime", "--lime-samples", "300",
                    "--no-audio", "--out", out]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = ["-np", "2", "--oversubscribe", "--bind-to", "none", TestEnv.serBinary] + args
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        func finished() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: out + "/lime")) ?? []).filter { $0.hasSuffix(".json") }
        }
        var deadline = Date().addingTimeInterval(300)
        while finished().count < 2 && p.isRunning && Date() < deadline { usleep(50_000) }
        XCTAssertGreaterThanOrEqual(finished().count, 2)
        // Rank 1 of this job: a ser process whose command line names our output folder.
        var worker: Int32?
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                  let cmd = try? String(decoding: readFile("/proc/\(pid)/cmdline"), as: UTF8.self),
                  cmd.contains(out), !cmd.contains("mpirun"),
                  let environ = try? String(decoding: readFile("/proc/\(pid)/environ"), as: UTF8.self),
                  environ.split(separator: "\0").contains("OMPI_COMM_WORLD_RANK=1") else { continue }
            worker = pid
        }
        let pid = try XCTUnwrap(worker, "rank 1 not found")
        kill(pid, SIGKILL)
        deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0, "the job ends when a rank dies")
        let done = finished()
        XCTAssertLessThan(done.count, 10, "killed before the end")
        for name in done {
            let record = try json("\(out)/lime/\(name)")
            XCTAssertEqual(record["status"] as? String, "ok")
            for o in record["outputs"] as? [String] ?? [] { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(o)"), o) }
            let stem = String(name.dropLast(5))
            XCTAssertNoThrow(try SafeTensors.read(path: "\(out)/lime/\(stem).safetensors"))
        }
        let r = try Command.ser(args)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("\(done.count) already done, \(10 - done.count) to do"), r.stderr)
        XCTAssertEqual(finished().count, 10)
        XCTAssertTrue(try tasks(out).allSatisfy { $0["status"] as? String == "ok" })
    }

    // MARK: - Refusals and options

    func testRefusesAnotherFrontEndOrClassSet() throws {
        let f = try fixture()
        let dir = TestEnv.temporaryDirectory(self)
        var r = try Command.ser(["preprocess", "--corpus", "synth:" + f.corpus, "--out", dir + "/s48", "--preset", "paper48k"])
        XCTAssertEqual(r.status, 0, r.output)
        r = try Command.ser(["explain", "--run", f.run, "--features", dir + "/s48", "--split", "test", "--out", dir + "/o1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("front end: the run used"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/o1/index.json"), "nothing is computed")
        r = try Command.ser(["preprocess", "--corpus", "synth:" + f.corpus, "--out", dir + "/s3", "--labels", "angry,happy,neutral"])
        XCTAssertEqual(r.status, 0, r.output)
        r = try Command.mpirun(2, ["explain", "--run", f.run, "--features", dir + "/s3", "--split", "test", "--out", dir + "/o2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.rankErrors.contains("classes: the run used angry,happy,neutral,sad"), r.stderr)

        r = try Command.ser(["explain", "--run", f.run, "--split", "test", "--files", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("exactly one of --files"), r.stderr)
        r = try Command.ser(["explain", "--run", f.run, "--files", "nothere.wav", "--out", dir + "/o3"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("'nothere.wav' is not in the store"), r.stderr)
        r = try Command.ser(["explain", "--run", f.run, "--split", "test", "--methods", "gradcam,shap"])
        XCTAssertTrue(r.stderr.contains("unknown method 'shap'"), r.stderr)
    }

    /// --files by id and path, the YAMNet layer, LIME over time slices, the true label as target,
    /// --ranks, and a run that recorded its store's path relative to where it was trained.
    func testOptions() throws {
        let f = try fixture()
        let store = try FeatureStore.open(f.store)
        let out = TestEnv.temporaryDirectory(self) + "/o"
        // Through --ranks (ser starts mpirun itself).
        let r = try Command.ser(["explain", "--ranks", "2", "--run", f.run, "--files", "1,\(store.files[2].relativePath)", "--layer", "yamnet",
                                 "--lime-regions", "time:6", "--lime-samples", "20", "--target", "label", "--no-faithfulness", "--out", out])
        XCTAssertEqual(r.status, 0, r.output)
        let list = try tasks(out)
        XCTAssertEqual(Set(list.compactMap { $0["file"] as? Int }), [1, 2])
        for t in list {
            let record = try json("\(out)/\(t["method"]!)/\(t["stem"]!).json")
            XCTAssertEqual(record["target"] as? String, store.files[t["file"] as! Int].label)
        }
        let st = try SafeTensors.read(path: "\(out)/gradcam/\(list[0]["stem"]!).safetensors")
        XCTAssertEqual(try st.require("coarse_maps").shape.suffix(2), [3, 2])
        let lime = try SafeTensors.read(path: "\(out)/lime/\(list[0]["stem"]!).safetensors")
        XCTAssertEqual(try lime.require("region_weights").shape.last, 6)

        // A run that recorded its store as a relative path (`ser train --features store` run in
        // the folder holding both) is explained from anywhere.
        let moved = f.dir + "/run-relative-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.copyItem(atPath: f.run, toPath: moved)
        var config = try json(moved + "/config.json")
        var options = try XCTUnwrap(config["options"] as? [String: Any])
        options["features"] = "store"
        config["options"] = options
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: moved + "/config.json"))
        let r2 = try Command.run(TestEnv.serBinary, ["explain", "--run", moved, "--files", "0", "--methods", "gradcam", "--no-audio",
                                                     "--no-faithfulness", "--out", out + "-relative"], directory: "/")
        XCTAssertEqual(r2.status, 0, r2.output)
    }

    func testBenchExplainRuns() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let r = try Command.ser(["bench", "explain", "--width", "0.125", "--files", "2", "--lime-samples", "8", "--batch", "16",
                                 "--inference-batches", "1", "--reference-samples", "4", "--workdir", dir, "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let methods = try XCTUnwrap(result["methods"] as? [[String: Any]])
        XCTAssertEqual(methods.compactMap { $0["method"] as? String }, ["gradcam", "lime", "occlusion"])
        XCTAssertTrue(methods.allSatisfy { ($0["tasksPerSecond"] as? Double ?? 0) > 0 && $0["failed"] as? Int == 0 })
        XCTAssertGreaterThan(result["inferenceSegmentsPerSecond"] as? Double ?? 0, 0)
    }
}
