import ArgumentParser
import Foundation
import Shared

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the MPI world, the hosts, the BLAS kernel in use and the library versions.",
        discussion: "Run it under mpirun to check that every rank starts and sees the same libraries: `mpirun -np 2 ser info`."
    )

    @Option(help: "Compute threads per rank (default: the rank's share of the node's cores).")
    var threads: Int?

    @Flag(help: "Print the facts as JSON instead of text.")
    var json = false

    @Flag(help: "Also test every MPI operation ser uses (collectives, point to point, non-blocking) and measure allreduce bandwidth. Exits with status 1 if any check fails.")
    var check = false

    // A long-running MPI job for the fault tests of the multi-node harness (Cluster/netns).
    @Option(name: .customLong("check-loop"),
            help: ArgumentHelp("Repeat the communication checks for this many seconds (implies --check).",
                               valueName: "seconds", visibility: .hidden))
    var checkLoop: Double?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
        if let s = checkLoop, !(s > 0) { throw ValidationError("--check-loop must be a positive number of seconds (got \(s))") }
    }

    func run() throws {
        let world = Runtime.start(threads: threads)
        let hosts = world.hostNames()
        let threadCounts = world.allgather([Int64(ComputeThreads.current)])
        let kernels = world.allgatherStrings(BLASKernel.current)
        let bf16 = world.allgatherStrings(MatmulPrecision.supportedKernel.description)
        let noBF16 = MatmulPrecision.Kernel.none.description
        if world.isRoot {
            var facts: [(String, String)] = [
                ("MPI world", world.isMPI ? "\(world.size) ranks (MPI)" : "1 process (local mode, no mpirun)"),
                ("hosts", Dictionary(grouping: hosts.indices, by: { hosts[$0] }).sorted { $0.key < $1.key }
                    .map { "\($0.key) (ranks \($0.value.map(String.init).joined(separator: ",")))" }.joined(separator: "; ")),
                ("threads per rank", threadCounts.map { String($0[0]) }.joined(separator: ",")),
                ("CPU", "\(CPUInfo.modelName), \(CPUInfo.onlineCores) cores online, \(CPUInfo.usableCores) usable by rank 0"),
                ("BLAS kernel", Set(kernels).sorted().joined(separator: ",") + " — " + BLASKernel.decision),
                ("bf16 matrix products", !bf16.contains(noBF16) ? "available on every rank (\(Set(bf16).sorted().joined(separator: ", "))): --precision bf16 runs"
                    : Set(bf16) == [noBF16] ? "not available (no AVX512-BF16, no AMX-BF16): --precision fp32 only"
                    : "on some ranks only: --precision bf16 would be refused"),
            ]
            facts += NativeLibraries.all
            if json {
                let body = facts.map { "  \(jsonString($0.0)): \(jsonString($0.1))" }.joined(separator: ",\n")
                print("{\n\(body)\n}")
            } else {
                let width = facts.map { $0.0.count }.max() ?? 0
                for (k, v) in facts { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
            }
        }
        if check || checkLoop != nil {
            var outcome = CommCheck.run(world)
            if let seconds = checkLoop {
                // Rank 0's clock decides for everyone, so all ranks run the same number of rounds.
                let start = Date()
                var rounds = 1
                while true {
                    var more: [Int64] = [world.isRoot && Date().timeIntervalSince(start) < seconds ? 1 : 0]
                    world.broadcast(&more)
                    if more[0] == 0 { break }
                    for f in CommCheck.run(world, payloadMB: 1).failed where !outcome.failed.contains(f) { outcome.failed.append(f) }
                    rounds += 1
                }
                if world.isRoot { print("check loop  \(rounds) rounds in \(String(format: "%.1f", Date().timeIntervalSince(start))) s") }
            }
            if world.isRoot {
                for p in outcome.passed { print("check  ok    \(p)") }
                for f in outcome.failed { print("check  FAIL  \(f)") }
                if world.size > 1 { print(String(format: "allreduce bandwidth  %.2f GB/s (16 MiB float32 payload)", outcome.allreduceGBps)) }
            }
            if !outcome.failed.isEmpty {
                world.finalize()
                throw ExitCode(1)
            }
        }
        world.finalize()
    }
}
