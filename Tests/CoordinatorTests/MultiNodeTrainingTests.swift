import Foundation
import Shared
import TestSupport
import XCTest

/// Training across "hosts" of the local multi-node harness (Cluster/netns: network namespaces on a
/// bridge, Open MPI over TCP): the same weights as one host, and a cut link survived.
final class MultiNodeTrainingTests: XCTestCase {
    var cluster: String { TestEnv.repoRoot + "/Cluster/netns/cluster.sh" }

    func requireHarness() throws {
        guard getuid() == 0 else { throw XCTSkip("network namespaces need root") }
        guard Command.which("ip") != nil, Command.which("mpirun") != nil else { throw XCTSkip("needs iproute2 and Open MPI") }
    }

    func makeStore(_ dir: String) throws -> String {
        XCTAssertEqual(try Command.ser(["synth", "--out", dir + "/corpus", "--files-per-class", "40", "--quiet"]).status, 0)
        XCTAssertEqual(try Command.ser(["preprocess", "--corpus", "synth:" + dir + "/corpus", "--out", dir + "/store", "--quiet"]).status, 0)
        return dir + "/store"
    }

    /// Deterministic mode: the tests compare weights bit for bit.
    let small = ["--width", "0.125", "--learning-rate", "0.001", "--mode", "deterministic", "--quiet"]

    func weights(_ run: String) throws -> [String: Data] {
        try SafeTensors.read(path: run + "/weights.safetensors").tensors.mapValues(\.data)
    }

    func testTwoHostsTrainBitwiseLikeOneHost() throws {
        try requireHarness()
        let dir = TestEnv.temporaryDirectory(self, "ser-mn")
        let store = try makeStore(dir)
        let args = ["train", "--features", store, "--epochs", "2"] + small
        XCTAssertEqual(try Command.ser(args + ["--out", dir + "/local"]).status, 0)
        let r = try Command.run(cluster, ["run", "--hosts", "2", "--", "ser"] + args + ["--out", dir + "/hosts"],
                                environment: ["SER_BINARY": TestEnv.serBinary], timeout: 600)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("ran on ser-h1") && r.output.contains("ran on ser-h2"), r.output)
        let config = try String(contentsOfFile: dir + "/hosts/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"ranks\" : 2"), config)
        XCTAssertEqual(try weights(dir + "/local"), try weights(dir + "/hosts"), "two hosts must give the one-host weights bit for bit")
    }

    /// One `ser explain` job on two hosts: the coordinator on host 1 hands tasks to the worker on
    /// host 2 over TCP, both compute, and the maps equal the ones computed on one host.
    func testOneExplainJobSpreadsItsTasksOverBothHosts() throws {
        try requireHarness()
        let dir = TestEnv.temporaryDirectory(self, "ser-mn-explain")
        let store = try makeStore(dir)
        let run = dir + "/run"
        XCTAssertEqual(try Command.ser(["train", "--features", store, "--out", run, "--epochs", "1"] + small).status, 0)
        let explain = ["explain", "--run", run, "--split", "test", "--limit", "6", "--methods", "gradcam,occlusion",
                       "--no-faithfulness", "--no-audio"]
        XCTAssertEqual(try Command.ser(explain + ["--out", dir + "/local", "--quiet"]).status, 0)
        let r = try Command.run(cluster, ["run", "--hosts", "2", "--", "ser"] + explain + ["--out", dir + "/hosts"],
                                environment: ["SER_BINARY": TestEnv.serBinary], timeout: 600)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("ran on ser-h1") && r.output.contains("ran on ser-h2"), r.output)
        let index = try ExplainIndexFile(dir + "/hosts/index.json")
        XCTAssertEqual(index.tasks.count, 12)
        XCTAssertTrue(index.tasks.allSatisfy { $0["status"] as? String == "ok" }, "\(index.tasks)")
        XCTAssertEqual(Set(index.tasks.compactMap { $0["rank"] as? Int }), [0, 1], "both hosts computed tasks")
        // Every map, whichever host computed it, equals the one-host map (thread chunking is
        // deterministic, so the only difference could come from the transport).
        for t in index.tasks {
            let name = "\(t["method"] as! String)/\(t["stem"] as! String).safetensors"
            let a = try SafeTensors.read(path: "\(dir)/hosts/\(name)").require("map").floats()
            let b = try SafeTensors.read(path: "\(dir)/local/\(name)").require("map").floats()
            let scale = max(1e-6, b.map(abs).max()!)
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * scale, name) }
        }
    }

    /// index.json as plain JSON, so the test reads what a user's tool would.
    struct ExplainIndexFile {
        let tasks: [[String: Any]]
        init(_ path: String) throws {
            let obj = try JSONSerialization.jsonObject(with: try readFile(path)) as? [String: Any]
            tasks = obj?["tasks"] as? [[String: Any]] ?? []
        }
    }

    /// The link of host 2 is cut mid-training: the watchdog ends the job naming that host, the
    /// supervisor restarts the job on the remaining host from the last checkpoint, and the run
    /// finishes with the weights of a run that was never interrupted.
    func testCutLinkIsNamedAndTheRunCompletesOnTheRemainingHost() throws {
        try requireHarness()
        let dir = TestEnv.temporaryDirectory(self, "ser-fault")
        let store = try makeStore(dir)
        let run = dir + "/run"
        let train = ["train", "--features", store, "--out", run, "--resume", run, "--epochs", "12", "--checkpoint-every", "2",
                     "--watchdog", "3"] + small
        XCTAssertEqual(try Command.ser(["train", "--features", store, "--out", dir + "/reference", "--epochs", "12"] + small).status, 0)
        // The supervised job: the first attempt runs on two hosts and host 2's link is cut once
        // training is under way (its first checkpoint exists: a fixed delay would race a fast
        // machine); a restart runs on the host that is left (as an operator or a Slurm requeue would).
        let script = dir + "/job.sh"
        let quoted = train.map { "'\($0)'" }.joined(separator: " ")
        try AtomicFile.write("""
        #!/bin/bash
        if [ ! -e '\(dir)/attempted' ]; then
          touch '\(dir)/attempted'
          '\(cluster)' run --hosts 2 --timeout 300 -- ser \(quoted) &
          job=$!
          until compgen -G '\(run)/checkpoints/ckpt-step*' >/dev/null || ! kill -0 $job 2>/dev/null; do sleep 0.05; done
          '\(cluster)' cut ser-h2
          wait $job
          exit $?
        fi
        exec '\(cluster)' run --hosts 1 --timeout 300 -- ser \(quoted)
        """, to: script)
        chmod(script, 0o755)
        let r = try Command.ser(["supervise", "--max-restarts", "2", "--backoff", "1", "--abort-grace", "10", "--", "/bin/bash", script],
                                environment: ["SER_BINARY": TestEnv.serBinary], timeout: 900)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("watchdog: rank 0 on ser-h1"), r.output)
        XCTAssertTrue(r.output.contains("no heartbeat from rank 1 on host ser-h2"), r.output)
        XCTAssertTrue(r.output.contains("supervise: restart 1/2"), r.output)
        XCTAssertTrue(r.output.contains("resuming from"), r.output)
        XCTAssertEqual(try weights(dir + "/reference"), try weights(run), "the restarted run must end with the uninterrupted run's weights")
    }
}
