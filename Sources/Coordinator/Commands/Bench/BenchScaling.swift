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

    @Option(help: "Channel multiplier (1 = fusion-v1 as published).")
    var width: Double = 1

    @Option(help: "fast (ser train's default) or deterministic.")
    var mode: String = "fast"

    @Option(help: "Matrix products in fp32 or bf16 (see ser bench train).")
    var precision: String = "fp32"

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
        print("bench scaling: fusion-v1 width \(width), batch 128, \(mode) mode, \(precision), \(steps) timed steps each; machine \(CPUInfo.modelName), \(cores) cores")
        let single = try runJob(1, threads: 1)
        let threaded = try runJob(1, threads: n)
        let parallel = try runJob(n, threads: 1)
        func line(_ name: String, _ r: NetworkBenchmark.Result) {
            print(String(format: "%-24@ %7.1f segments/s  %6.0f GFLOP/s  %5.1f %% of sgemm peak  wait %4.1f %% (BN statistics %4.1f %%)  %5.0f MB/rank",
                         name as NSString, r.segmentsPerSecond, r.gflopPerSecond, 100 * r.gflopPerSecond / r.sgemmPeakGflops,
                         100 * r.communicationWaitFraction, 100 * r.statisticsWaitFraction, r.peakResidentMB))
        }
        line("1 rank × 1 thread", single)
        line("1 rank × \(n) threads", threaded)
        line("\(n) ranks × 1 thread", parallel)
        print(String(format: "scaling: %d ranks × 1 thread = %.2f× one rank × 1 thread (efficiency %.0f %%); 1 rank × %d threads = %.2f×",
                     n, parallel.segmentsPerSecond / single.segmentsPerSecond, 100 * parallel.segmentsPerSecond / single.segmentsPerSecond / Double(n),
                     n, threaded.segmentsPerSecond / single.segmentsPerSecond))
    }
}
