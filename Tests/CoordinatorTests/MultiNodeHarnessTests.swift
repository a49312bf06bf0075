import Foundation
import Shared
import TestSupport
import XCTest

/// Where the Cluster/ scripts are, and how to look at what the netns harness leaves behind.
enum ClusterScripts {
    static let dir = TestEnv.repoRoot + "/Cluster"
    static let harness = dir + "/netns/cluster.sh"
    static let launcher = dir + "/ser-mpirun"

    /// Every shell script under Cluster/: by extension, or by a shell shebang.
    static func all() throws -> [String] {
        let files = FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? []
        return try files.sorted().map { dir + "/" + $0 }.filter { path in
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { return false }
            if path.hasSuffix(".sh") || path.hasSuffix(".sbatch") { return true }
            let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)).readData(ofLength: 64)
            let line = String(decoding: head, as: UTF8.self).split(separator: "\n").first ?? ""
            return line.hasPrefix("#!") && (line.contains("bash") || line.hasSuffix("/sh"))
        }
    }

    /// Namespaces, links and processes of the harness that exist now (empty when it cleaned up).
    static func leftovers(marker: String? = nil) throws -> [String] {
        var found: [String] = []
        let ns = try Command.run("/usr/sbin/ip", ["netns", "list"])
        found += ns.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("ser-h") }.map { "netns " + $0 }
        let links = try Command.run("/usr/sbin/ip", ["-o", "link", "show"])
        for line in links.stdout.split(separator: "\n") {
            let parts = line.split(separator: ":")
            guard parts.count > 1 else { continue }
            let name = parts[1].trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? ""
            if name == "ser-br0" || (name.hasPrefix("ser-v") && name.dropFirst(5).allSatisfy(\.isNumber)) { found.append("link " + name) }
        }
        if let marker {
            // Processes whose command line carries this test's unique argument: ranks or daemons left running.
            for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(pid) != nil {
                guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
                let cmd = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
                if cmd.contains(marker) && !cmd.contains("swift-test") && !cmd.contains(".xctest") { found.append("process \(pid): \(cmd)") }
            }
        }
        return found
    }
}

/// The cluster scripts users run: their syntax, the launcher's flags, the Slurm scripts' resume logic.
final class ClusterScriptsTests: XCTestCase {
    func testEveryScriptPassesBashSyntaxCheck() throws {
        let scripts = try ClusterScripts.all()
        let names = Set(scripts.map { String($0.dropFirst(ClusterScripts.dir.count + 1)) })
        for required in ["ser-mpirun", "netns/cluster.sh", "netns/rsh-agent.sh",
                         "slurm/preprocess.sbatch", "slurm/train.sbatch", "slurm/explain.sbatch"] {
            XCTAssertTrue(names.contains(required), "Cluster/\(required) is missing (found \(names.sorted()))")
        }
        for script in scripts {
            let r = try Command.run("/bin/bash", ["-n", script])
            XCTAssertEqual(r.status, 0, "bash -n \(script): \(r.stderr)")
            XCTAssertTrue(FileManager.default.isExecutableFile(atPath: script), "\(script) is not executable")
        }
    }

    /// The launcher's printed command, as words.
    func dryRun(_ args: [String], environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let r = try Command.run(ClusterScripts.launcher, args + ["--dry-run", "--", "ser", "info", "--check"],
                                environment: ["SER_BINARY": "/opt/ser/bin/ser"].merging(environment) { $1 })
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        return r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
    }

    func value(after flag: String, in words: [String]) -> String? {
        guard let i = words.firstIndex(of: flag), i + 1 < words.count else { return nil }
        return words[i + 1]
    }

    func testLauncherPlacesOneRankPerCoreAndOversubscribesOnlyWhenItMust() throws {
        let exact = try dryRun(["--hosts", "n1:2,n2:2", "--np", "4"])
        XCTAssertEqual(exact.first { $0 == "mpirun" }, "mpirun")
        XCTAssertEqual(value(after: "--host", in: exact), "n1:2,n2:2")
        XCTAssertEqual(value(after: "-np", in: exact), "4")
        XCTAssertEqual(value(after: "--map-by", in: exact), "core")
        XCTAssertEqual(value(after: "--bind-to", in: exact), "core")
        XCTAssertFalse(exact.contains("--oversubscribe"))
        XCTAssertEqual(Array(exact.suffix(3)), ["/opt/ser/bin/ser", "info", "--check"])

        let over = try dryRun(["--hosts", "n1:2,n2:2", "--np", "5"])
        XCTAssertTrue(over.contains("--oversubscribe"))
        XCTAssertEqual(value(after: "--bind-to", in: over), "none")

        // A hostfile's slots count; a line without slots= counts this machine's cores.
        let dir = TestEnv.temporaryDirectory(self)
        let hostfile = dir + "/hosts"
        try "# comment\nnodeA slots=3\n\nnodeB slots=1\n".write(toFile: hostfile, atomically: true, encoding: .utf8)
        let fromFile = try dryRun(["--hostfile", hostfile])
        XCTAssertEqual(value(after: "--hostfile", in: fromFile), hostfile)
        XCTAssertEqual(value(after: "-np", in: fromFile), "4")
        XCTAssertFalse(fromFile.contains("--oversubscribe"))
    }

    func testLauncherOneRankPerNodeWithThreads() throws {
        let words = try dryRun(["--hosts", "n1,n2,n3", "--per-node", "1", "--threads", "8"])
        XCTAssertEqual(value(after: "--map-by", in: words), "ppr:1:node")
        XCTAssertEqual(value(after: "--bind-to", in: words), "none")
        XCTAssertEqual(value(after: "-np", in: words), "3")
        // ser is told its thread count, right after the subcommand.
        XCTAssertEqual(Array(words.suffix(5)), ["/opt/ser/bin/ser", "info", "--threads", "8", "--check"])
        // Several ranks per node with threads: each bound to its own cores when they fit.
        let two = try dryRun(["--hosts", "n1:8,n2:8", "--per-node", "2", "--threads", "4"])
        XCTAssertEqual(value(after: "--map-by", in: two), "ppr:2:node:PE=4")
        XCTAssertEqual(value(after: "--bind-to", in: two), "core")
        XCTAssertEqual(value(after: "-np", in: two), "4")
    }

    func testLauncherNetworkEnvironmentAndRootFlags() throws {
        let words = try dryRun(["--np", "1", "--iface", "10.1.0.0/16"],
                               environment: ["SER_DATA": "/data", "SER_BLAS_REEXEC": "1", "LD_LIBRARY_PATH": "/opt/lib"])
        XCTAssertEqual(value(after: "btl", in: words), "tcp,self,vader")
        XCTAssertEqual(value(after: "btl_tcp_if_include", in: words), "10.1.0.0/16")
        XCTAssertEqual(value(after: "oob_tcp_if_include", in: words), "10.1.0.0/16")
        let exported = Set(words.indices.filter { words[$0] == "-x" }.map { words[$0 + 1] })
        XCTAssertTrue(exported.isSuperset(of: ["PATH", "LD_LIBRARY_PATH", "SER_DATA", "SER_BINARY"]), "\(exported)")
        XCTAssertFalse(exported.contains("SER_BLAS_REEXEC"))
        XCTAssertEqual(words.contains("--allow-run-as-root"), getuid() == 0)
        XCTAssertEqual(words.contains("OMPI_ALLOW_RUN_AS_ROOT=1"), getuid() == 0)

        let bad = try Command.run(ClusterScripts.launcher, ["--np", "0", "--", "ser", "info"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--np must be a whole number"), bad.stderr)
        let noCommand = try Command.run(ClusterScripts.launcher, ["--np", "2"])
        XCTAssertEqual(noCommand.status, 2)
        XCTAssertTrue(noCommand.stderr.contains("give the command after --"), noCommand.stderr)
    }

    func testLauncherRunsARealMPIJob() throws {
        guard Command.which("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        let r = try Command.run(ClusterScripts.launcher, ["--np", "2", "--", "ser", "info", "--check"],
                                environment: ["SER_BINARY": TestEnv.serBinary], timeout: 300)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("2 ranks (MPI)"), r.stdout)
        XCTAssertFalse(r.stdout.contains("FAIL"), r.stdout)
        XCTAssertTrue(r.stderr.contains("ser-mpirun: "), "the command line is printed: \(r.stderr)")
    }

    /// A stand-in for ser that records its arguments (and can take its time), and a stand-in for
    /// scontrol that records requeue requests: the Slurm scripts' logic runs for real around them.
    func fakes() throws -> (dir: String, env: [String: String]) {
        let dir = TestEnv.temporaryDirectory(self, "ser-slurm")
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try "#!/bin/bash\necho \"$*\" >> \(dir)/ser-args\nsleep ${FAKE_SER_SECONDS:-0}\nexit ${FAKE_SER_STATUS:-0}\n"
            .write(toFile: dir + "/bin/ser", atomically: true, encoding: .utf8)
        try "#!/bin/bash\necho \"$*\" >> \(dir)/scontrol-args\n".write(toFile: dir + "/bin/scontrol", atomically: true, encoding: .utf8)
        for f in ["ser", "scontrol"] { chmod(dir + "/bin/" + f, 0o755) }
        let path = dir + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return (dir, ["SER_BINARY": dir + "/bin/ser", "PATH": path, "SER_HOME": TestEnv.repoRoot])
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func testTrainScriptResumesOnlyFromACheckpoint() throws {
        guard Command.which("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        let (dir, env) = try fakes()
        let script = ClusterScripts.dir + "/slurm/train.sbatch"
        let run = dir + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        var r = try Command.run("/bin/bash", [script, dir + "/store", run, "--epochs", "3"], environment: env, timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        try FileManager.default.createDirectory(atPath: run + "/checkpoints", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: run + "/checkpoints/ckpt-step000000002.safetensors.zst"))
        r = try Command.run("/bin/bash", [script, dir + "/store", run], environment: env, timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(lines(dir + "/ser-args"), ["train --features \(dir)/store --out \(run) --epochs 3",
                                                  "train --features \(dir)/store --out \(run) --resume \(run)"])
        // A failing run is reported with its status, and not requeued.
        r = try Command.run("/bin/bash", [script, dir + "/store", run], environment: env.merging(["FAKE_SER_STATUS": "3"]) { $1 }, timeout: 120)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(lines(dir + "/scontrol-args").isEmpty)
    }

    func testTrainScriptRequeuesOnTheTimeLimitSignalAndWaitsForTheRun() throws {
        guard Command.which("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        let (dir, env) = try fakes()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [ClusterScripts.dir + "/slurm/train.sbatch", dir + "/store", dir + "/run"]
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            .merging(["SLURM_JOB_ID": "4242", "FAKE_SER_SECONDS": "4"]) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        // Slurm's --signal=B:USR1 goes to the batch shell only, while the job runs.
        let deadline = Date().addingTimeInterval(60)
        while lines(dir + "/ser-args").isEmpty && Date() < deadline { usleep(50_000) }
        kill(p.processIdentifier, SIGUSR1)
        let log = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, log)
        XCTAssertEqual(lines(dir + "/scontrol-args"), ["requeue 4242"], log)
        XCTAssertTrue(log.contains("requeueing job 4242"), log)
        XCTAssertTrue(log.contains("ser train ended with status 0"), "the script waited for the run: \(log)")
    }

    func testPreprocessAndExplainScriptsCallSer() throws {
        guard Command.which("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        let (dir, env) = try fakes()
        var r = try Command.run("/bin/bash", [ClusterScripts.dir + "/slurm/preprocess.sbatch", "ravdess:/data/rav", dir + "/store"],
                                environment: env, timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        r = try Command.run("/bin/bash", [ClusterScripts.dir + "/slurm/explain.sbatch", dir + "/run", dir + "/out", "--limit", "5"],
                            environment: env, timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        // Preprocessing runs one rank per core (each recorded its arguments), explain one per node here.
        let calls = lines(dir + "/ser-args")
        let cores = Int(try Command.run("/usr/bin/nproc", []).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertEqual(calls.filter { $0.hasPrefix("preprocess") },
                       [String](repeating: "preprocess --corpus ravdess:/data/rav --out \(dir)/store", count: cores))
        XCTAssertEqual(calls.filter { $0.hasPrefix("explain") },
                       ["explain --run \(dir)/run --split test --methods gradcam,lime,occlusion --out \(dir)/out --limit 5"])
        r = try Command.run("/bin/bash", [ClusterScripts.dir + "/slurm/preprocess.sbatch"], environment: env)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("usage:"), r.stderr)
    }
}

/// The local multi-node harness: K network namespaces on a bridge, Open MPI across them over TCP.
/// Needs root, `ip netns`, `unshare` and mpirun; skipped otherwise.
final class MultiNodeHarnessTests: XCTestCase {
    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("the netns harness needs root") }
        guard Command.which("mpirun") != nil else { throw XCTSkip("mpirun is not installed") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip"),
              (try? Command.run("/usr/sbin/ip", ["netns", "list"]))?.status == 0 else { throw XCTSkip("ip netns is unavailable") }
        // A namespace is the whole point: if this machine cannot make one, there is nothing to test.
        let probe = try Command.run("/usr/bin/unshare", ["--net", "--uts", "true"])
        guard probe.status == 0 else { throw XCTSkip("cannot create network/UTS namespaces here: \(probe.stderr)") }
    }

    func harness(_ args: [String], timeout: Double = 300) throws -> CommandResult {
        try Command.run(ClusterScripts.harness, args, environment: ["SER_BINARY": TestEnv.serBinary], timeout: timeout)
    }

    /// The facts JSON `ser info --json` prints first (check lines follow it).
    func facts(_ stdout: String) throws -> [String: String] {
        guard let end = stdout.range(of: "\n}\n") else { XCTFail("no JSON in \(stdout)"); return [:] }
        let json = stdout[stdout.startIndex..<end.upperBound]
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] ?? [:]
    }

    func assertClean(marker: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try ClusterScripts.leftovers(marker: marker), [], "the harness left things behind", file: file, line: line)
    }

    func testTwoHostsPassEveryCommunicationCheck() throws {
        let r = try harness(["run", "--hosts", "2", "--per-host", "1", "--timeout", "240", "--",
                             "ser", "info", "--check", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let f = try facts(r.stdout)
        XCTAssertEqual(f["MPI world"], "2 ranks (MPI)")
        // Two ranks on two distinct hosts, as MPI_Get_processor_name reports them.
        XCTAssertEqual(f["hosts"], "ser-h1 (ranks 0); ser-h2 (ranks 1)")
        let checks = r.stdout.split(separator: "\n").filter { $0.hasPrefix("check  ") }
        XCTAssertEqual(checks.count, 9, r.stdout)
        XCTAssertTrue(checks.allSatisfy { $0.hasPrefix("check  ok") }, r.stdout)
        XCTAssertTrue(checks.contains { $0.contains("send/receive ring") })
        // The harness says where each rank ran.
        XCTAssertTrue(r.stderr.contains("rank 0 ran on ser-h1 (10.77.0.11)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("rank 1 ran on ser-h2 (10.77.0.12)"), r.stderr)
        // TCP over the bridge subnet only.
        XCTAssertTrue(r.stderr.contains("btl_tcp_if_include 10.77.0.0/24"), r.stderr)
        try assertClean()
    }

    func testThreeHostsWithTwoRanksEach() throws {
        let r = try harness(["run", "--hosts", "3", "--per-host", "2", "--timeout", "240", "--", "ser", "info", "--check", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let f = try facts(r.stdout)
        XCTAssertEqual(f["MPI world"], "6 ranks (MPI)")
        XCTAssertEqual(f["hosts"], "ser-h1 (ranks 0,1); ser-h2 (ranks 2,3); ser-h3 (ranks 4,5)")
        XCTAssertFalse(r.stdout.contains("FAIL"), r.stdout)
        // Each host's two ranks share its cores (ser divides them by the ranks on the node).
        XCTAssertEqual(f["threads per rank"]?.split(separator: ",").count, 6)
        try assertClean()
    }

    func testCleanUpAfterAFailingCommand() throws {
        let r = try harness(["run", "--hosts", "2", "--", "/bin/false"])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("rank 1 ran on ser-h2"), r.stderr)
        try assertClean()
        // A command that does not exist at all: mpirun fails to start it, and still nothing remains.
        let missing = try harness(["run", "--hosts", "2", "--", "/nonexistent/ser"])
        XCTAssertNotEqual(missing.status, 0)
        try assertClean()
    }

    func testKillingAHostsRanksEndsTheJob() throws {
        let marker = "61.25"  // a unique --check-loop length, to find stray processes by
        let t0 = Date()
        let r = try harness(["run", "--hosts", "2", "--kill", "ser-h2@3", "--timeout", "200", "--",
                             "ser", "info", "--check-loop", marker])
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertNotEqual(r.status, 124, "the harness's timeout ended it, not MPI: \(r.output)")
        XCTAssertLessThan(elapsed, 55, "the job should end soon after the kill, not run its full minute")
        XCTAssertTrue(r.stderr.contains("killed rank(s) 1 on ser-h2"), r.stderr)
        try assertClean(marker: marker)
    }

    func testCuttingAHostsLinkEndsTheJob() throws {
        let marker = "62.25"
        let t0 = Date()
        let r = try harness(["run", "--hosts", "2", "--cut", "h2@3", "--timeout", "200", "--",
                             "ser", "info", "--check-loop", marker])
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertNotEqual(r.status, 124, "the harness's timeout ended it, not MPI: \(r.output)")
        XCTAssertLessThan(elapsed, 55, "a cut link must be noticed (keepalive), not hang: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("cut the link of ser-h2 (10.77.0.12)"), r.stderr)
        // Open MPI names the host it lost.
        XCTAssertTrue(r.stderr.contains("lost communication") && r.stderr.contains("10.77.0.12"), r.stderr)
        try assertClean(marker: marker)
    }

    func testTimeoutStopsAJobThatRunsTooLong() throws {
        let marker = "63.25"
        let r = try harness(["run", "--hosts", "2", "--timeout", "4", "--", "ser", "info", "--check-loop", marker])
        XCTAssertEqual(r.status, 124, r.output)
        try assertClean(marker: marker)
    }

    func testInterruptCleansUp() throws {
        let marker = "64.25"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ClusterScripts.harness)
        p.arguments = ["run", "--hosts", "2", "--", TestEnv.serBinary, "info", "--check-loop", marker]
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        // Wait until both ranks run (the harness records them), then press Ctrl-C.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let ranks = (try? FileManager.default.contentsOfDirectory(atPath: "/run/ser-cluster/ranks")) ?? []
            if ranks.count == 2 { break }
            usleep(100_000)
        }
        usleep(500_000)
        kill(p.processIdentifier, SIGINT)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130, log)
        XCTAssertTrue(log.contains("interrupted"), log)
        try assertClean(marker: marker)
    }

    func testDownIsIdempotentAndUpRefusesATakenCluster() throws {
        var r = try harness(["up", "2"])
        XCTAssertEqual(r.status, 0, r.output)
        defer { _ = try? harness(["down"]) }
        let status = try harness(["status"])
        XCTAssertTrue(status.stdout.contains("ser-h1 10.77.0.11 link up"), status.stdout)
        XCTAssertTrue(status.stdout.contains("ser-h2 10.77.0.12 link up"), status.stdout)
        r = try harness(["up", "2"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("already exists"), r.stderr)
        // On-demand faults work outside a run too.
        XCTAssertEqual(try harness(["cut", "2"]).status, 0)
        XCTAssertTrue(try harness(["status"]).stdout.contains("ser-h2 10.77.0.12 link down"))
        XCTAssertEqual(try harness(["restore", "ser-h2"]).status, 0)
        // A host's name is its own inside the host.
        let name = try harness(["exec", "h1", "--", "hostname"])
        XCTAssertEqual(name.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "ser-h1", name.output)
        XCTAssertEqual(try harness(["down"]).status, 0)
        XCTAssertEqual(try harness(["down"]).status, 0)
        try assertClean()
        let bad = try harness(["cut", "ser-h9"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("does not exist"), bad.stderr)
    }
}
