import ArgumentParser
import Foundation
import Shared
import Worker

struct BenchScaling: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Data-parallel scaling of training: 1 rank × 1 thread, 1 rank × all threads, N ranks × 1 thread.",
        discussion: "Starts each configuration as its own job (mpirun for several ranks) and prints segments/s, the scaling efficiency and the time spent waiting on gradient communication. Reference on this 2-core machine (issue 4): PyTorch DDP with 2 processes scales 1.83–1.86×; target ≥ 1.9× with < 3 % waiting."
    )

    @Option(help: "Ranks for the data-parallel configuration (default: the cores).")
    var ranks: Int?

    @Option(help: "Timed steps per configuration.")
    var steps: Int = 4

    @Option(help: "Rounds of the three configurations, run one after another; the scaling reported is the median round's. A shared VM's speed drifts over minutes, and a round's runs are minutes apart at most.")
    var rounds: Int = 1

    @Option(help: "Channel multiplier (1 = fusion-v1 as published).")
    var width: Double = 1

    @Option(help: "fast (ser train's default) or deterministic.")
    var mode: String = "fast"

    @Option(help: "Matrix products in fp32 or bf16 (see ser bench train).")
    var precision: String = "fp32"

    func validate() throws {
        if steps < 1 { throw ValidationError("--steps must be at least 1 (got \(steps))") }
        if rounds < 1 { throw ValidationError("--rounds must be at least 1 (got \(rounds))") }
        if let ranks, ranks < 2 { throw ValidationError("--ranks must be at least 2 for a data-parallel configuration (got \(ranks))") }
    }

    func run() throws {
        let cores = CPUInfo.usableCores
        let n = ranks ?? cores
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let base = ["bench", "train", "--json", "--steps", String(steps), "--width", String(width), "--mode", mode, "--precision", precision]
        func runJob(_ ranks: Int, threads: Int) throws -> NetworkBenchmark.Result {
            let p = Process()
            let out = Pipe()
            p.standardOutput = out
            var env = ProcessInfo.processInfo.environment
            if getuid() == 0 { env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
            env["SER_BLAS_REEXEC"] = nil
            p.environment = env
            if ranks == 1 {
                p.executableURL = URL(fileURLWithPath: exe)
                p.arguments = base + ["--threads", String(threads)]
            } else {
                guard let mpirun = LocalLauncher.which("mpirun") else { throw ValidationError("mpirun is not installed") }
                p.executableURL = URL(fileURLWithPath: mpirun)
                p.arguments = ["-np", String(ranks)] + (ranks > cores ? ["--oversubscribe", "--bind-to", "none"] : ["--bind-to", "core"])
                    + [exe] + base + ["--threads", String(threads)]
            }
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
                  let r = try? JSONDecoder().decode(NetworkBenchmark.Result.self, from: Data(line.utf8)) else {
                throw ValidationError("the \(ranks)-rank × \(threads)-thread run failed (status \(p.terminationStatus))")
            }
            return r
        }
        print("bench scaling: fusion-v1 width \(width), batch 128, \(mode) mode, \(precision), \(steps) timed steps each, \(rounds) round(s); machine \(CPUInfo.modelName), \(cores) cores")
        func line(_ name: String, _ r: NetworkBenchmark.Result) {
            print(String(format: "%-24@ %7.1f segments/s  %6.0f GFLOP/s  %5.1f %% of sgemm peak  wait %4.1f %% (BN statistics %4.1f %%)  %5.0f MB/rank",
                         name as NSString, r.segmentsPerSecond, r.gflopPerSecond, 100 * r.gflopPerSecond / r.sgemmPeakGflops,
                         100 * r.communicationWaitFraction, 100 * r.statisticsWaitFraction, r.peakResidentMB))
        }
        // (parallel, threaded) scaling against one rank × one thread, per round.
        var ratios: [(parallel: Double, threaded: Double)] = []
        for round in 1...rounds {
            let single = try runJob(1, threads: 1)
            let threaded = try runJob(1, threads: n)
            let parallel = try runJob(n, threads: 1)
            if rounds > 1 { print("round \(round):") }
            line("1 rank × 1 thread", single)
            line("1 rank × \(n) threads", threaded)
            line("\(n) ranks × 1 thread", parallel)
            ratios.append((parallel.segmentsPerSecond / single.segmentsPerSecond, threaded.segmentsPerSecond / single.segmentsPerSecond))
        }
        func median(_ v: [Double]) -> Double {
            let s = v.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let p = ratios.map(\.parallel), t = ratios.map(\.threaded)
        let spread = rounds > 1 ? String(format: " (rounds %.2f–%.2f×)", p.min()!, p.max()!) : ""
        print(String(format: "scaling: %d ranks × 1 thread = %.2f× one rank × 1 thread (efficiency %.0f %%)%@; 1 rank × %d threads = %.2f×",
                     n, median(p), 100 * median(p) / Double(n), spread as NSString, n, median(t)))
    }
}
