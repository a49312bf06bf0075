import ArgumentParser
import Foundation
import Shared

struct Supervise: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a job and restart it from its newest checkpoint when it fails (like torchrun --max-restarts).",
        discussion: """
        Example: ser supervise --max-restarts 3 -- ser train --features STORE --out RUN --ranks 2
        A failed `ser train` is restarted with `--resume RUN` (RUN from its --out or --resume), \
        so it continues from the newest valid checkpoint. Each restart and its cause (exit \
        status or signal, and the job's last error lines) is logged on standard error and, with \
        --log, to a file. The command may also be an mpirun or srun line around `ser train`.
        """
    )

    @Option(name: .customLong("max-restarts"), help: "Restarts allowed before giving up.")
    var maxRestarts: Int = 3

    @Option(help: "Seconds to wait before a restart.")
    var backoff: Double = 2

    @Option(help: "Also append each restart and its cause to this file.")
    var log: String?

    @Option(name: .customLong("abort-grace"), help: "Seconds a job may take to exit after its watchdog aborted it; then its process tree is terminated (mpirun can hang on an unreachable node).")
    var abortGrace: Double = 20

    @Argument(parsing: .captureForPassthrough, help: "The command to run (after --).")
    var command: [String] = []

    func validate() throws {
        if command.first == "--" { return }
        guard !command.isEmpty else { throw ValidationError("give the command to supervise after --, e.g. ser supervise -- ser train …") }
        if maxRestarts < 0 { throw ValidationError("--max-restarts must be 0 or more") }
    }

    var job: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    /// The same command with `--resume RUN` for a `ser train` job (if not already there).
    static func resumed(_ args: [String]) -> [String] {
        guard let t = args.firstIndex(of: "train"), !args.contains("--resume") else { return args }
        guard let o = args.firstIndex(of: "--out"), o + 1 < args.count else { return args }
        var out = args
        out.insert(contentsOf: ["--resume", args[o + 1]], at: t + 1)
        return out
    }

    func run() throws {
        let console = Console()
        var args = job
        guard !args.isEmpty else { throw ValidationError("nothing to run") }
        var attempt = 0
        while true {
            let started = Date()
            let (status, tail) = try Supervise.execute(args, abortGrace: abortGrace) { note($0, console) }
            if status == 0 {
                if attempt > 0 { note("job finished after \(attempt) restart(s)", console) }
                return
            }
            let cause = status > 128 ? "killed by signal \(status - 128)" : "exit status \(status)"
            let detail = tail.isEmpty ? "" : "; last error: " + tail
            if attempt >= maxRestarts {
                note("job failed (\(cause)\(detail)); \(maxRestarts) restart(s) used, giving up", console)
                throw ExitCode(status == 0 ? 1 : status)
            }
            attempt += 1
            note(String(format: "restart %d/%d after %@ (ran %@)%@", attempt, maxRestarts, cause, formatDuration(Date().timeIntervalSince(started)), detail), console)
            args = Supervise.resumed(args)
            Thread.sleep(forTimeInterval: backoff)
        }
    }

    func note(_ text: String, _ console: Console) {
        let line = "supervise: " + text
        console.warn(line)
        if let log {
            let old = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            try? AtomicFile.write(old + ISO8601DateFormatter().string(from: Date()) + " " + line + "\n", to: log)
        }
    }

    /// Runs the command, passing its output through; returns its status and last error line.
    /// If the job reports a watchdog abort but does not exit within `abortGrace` seconds, its
    /// process tree is terminated (SIGTERM, then SIGKILL).
    static func execute(_ args: [String], abortGrace: Double, note: @escaping (String) -> Void) throws -> (Int32, String) {
        let p = Process()
        if args[0] == "ser" {
            p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        } else {
            p.executableURL = URL(fileURLWithPath: args[0].contains("/") ? args[0] : (LocalLauncher.which(args[0]) ?? args[0]))
        }
        p.arguments = Array(args.dropFirst())
        let errPipe = Pipe()
        p.standardError = errPipe
        final class Tail: @unchecked Sendable {
            var lines: [String] = []
            var aborted: Date?
            let lock = NSLock()
        }
        let tail = Tail()
        errPipe.fileHandleForReading.readabilityHandler = { h in
            let data = h.availableData
            guard !data.isEmpty else { return }
            FileHandle.standardError.write(data)
            let text = String(decoding: data, as: UTF8.self)
            tail.lock.lock()
            tail.lines += text.split(separator: "\n").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            if tail.lines.count > 50 { tail.lines.removeFirst(tail.lines.count - 50) }
            if tail.aborted == nil && text.contains("watchdog:") { tail.aborted = Date() }
            tail.lock.unlock()
        }
        do { try p.run() } catch { throw ValidationError("cannot start \(args[0]): \(error.localizedDescription)") }
        var terminated = false
        while p.isRunning {
            usleep(200_000)
            tail.lock.lock()
            let since = tail.aborted.map { Date().timeIntervalSince($0) }
            tail.lock.unlock()
            if let since, since > abortGrace, !terminated {
                note(String(format: "the job reported a watchdog abort %.0f s ago but is still running; terminating it", since))
                // The whole tree, taken before anything dies: a job script's background children
                // (mpirun behind a cut link) would otherwise outlive it, orphaned, and hold the
                // nodes or locks the restart needs.
                let tree = descendants(of: p.processIdentifier)
                for pid in tree { kill(pid, SIGTERM) }
                terminated = true
                for _ in 0..<50 where tree.contains(where: { kill($0, 0) == 0 && !isZombie($0) }) { usleep(200_000) }
                for pid in tree.reversed() { kill(pid, SIGKILL) }
            }
        }
        p.waitUntilExit()
        errPipe.fileHandleForReading.readabilityHandler = nil
        let rest = errPipe.fileHandleForReading.readDataToEndOfFile()
        if !rest.isEmpty { FileHandle.standardError.write(rest) }
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        tail.lock.lock()
        let interesting = tail.lines.last { $0.contains("watchdog:") } ?? tail.lines.last { $0.contains("error") || $0.contains("ser[") || $0.contains("ser:") } ?? tail.lines.last ?? ""
        tail.lock.unlock()
        return (status == 0 && terminated ? 1 : status, String(interesting.prefix(400)))
    }

    /// A process and all its descendants (from /proc), parents before children.
    static func descendants(of root: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if fields.count > 1, let ppid = pid_t(fields[1]) { children[ppid, default: []].append(pid) }
        }
        var queue = [root], all: [pid_t] = []
        while !queue.isEmpty {
            let p = queue.removeFirst()
            all.append(p)
            queue += children[p] ?? []
        }
        return all
    }

    /// A dead child not yet reaped still answers kill(pid, 0).
    static func isZombie(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
    }
}
