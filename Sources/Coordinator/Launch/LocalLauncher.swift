import Foundation
import Shared

/// `--ranks N` on one machine: ser starts the MPI job itself, with the flags this machine needs,
/// so that nobody has to remember mpirun's options for a local run.
enum LocalLauncher {
    /// If `ranks` > 1 and this process is not already an MPI rank, runs
    /// `mpirun -np ranks <this executable> <arguments without --ranks>` and exits with its status.
    static func relaunchIfNeeded(ranks: Int?, console: Console) throws {
        guard let ranks, ranks > 1, !Communicator.launchedByMPI else { return }
        guard let mpirun = which("mpirun") else {
            throw LaunchError("--ranks \(ranks) needs Open MPI's mpirun on PATH (Debian: apt-get install openmpi-bin)")
        }
        var args = Array(CommandLine.arguments.dropFirst())
        if let i = args.firstIndex(of: "--ranks") { args.removeSubrange(i ... min(i + 1, args.count - 1)) }
        args.removeAll { $0.hasPrefix("--ranks=") }
        let cores = CPUInfo.usableCores
        var mpiArgs = ["-np", String(ranks)]
        if ranks > cores {
            mpiArgs += ["--oversubscribe", "--bind-to", "none"]
        } else {
            mpiArgs += ["--bind-to", "core", "--map-by", "core"]
        }
        var env = ProcessInfo.processInfo.environment
        if getuid() == 0 {
            env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        }
        // The kernel choice is re-made by each rank (it re-executes itself if needed).
        env["SER_BLAS_REEXEC"] = nil
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        console.info("starting \(ranks) ranks: mpirun \(mpiArgs.joined(separator: " ")) \(exe) \(args.joined(separator: " "))")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = mpiArgs + [exe] + args
        p.environment = env
        // Forward Ctrl-C and termination to mpirun, which passes them to the ranks.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        try p.run()
        p.waitUntilExit()
        exit(p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus)
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

struct LaunchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
