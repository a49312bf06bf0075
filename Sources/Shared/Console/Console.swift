import Foundation

/// What a person sees while a job runs.
///
/// On a terminal a progress line is redrawn in place; when standard error is a file (Slurm logs,
/// CI) the same information comes as plain lines at most every `interval` seconds, so logs stay
/// readable. Only rank 0 prints progress; every rank may print warnings.
public final class Console: @unchecked Sendable {
    public let isTerminal: Bool
    public let quiet: Bool
    private let lock = NSLock()
    private var lineOpen = false

    public init(quiet: Bool = false) {
        isTerminal = isatty(STDERR_FILENO) != 0 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        self.quiet = quiet
    }

    /// A line of information (standard error, so standard output stays for data).
    public func info(_ message: String) {
        guard !quiet else { return }
        emit(message)
    }

    /// A line shown even with --quiet (events a log must always have, e.g. a resume).
    public func notice(_ message: String) {
        emit(message)
    }

    /// A warning: always shown, prefixed so it stands out in logs.
    public func warn(_ message: String) {
        emit("warning: " + message)
    }

    private func emit(_ message: String) {
        lock.lock()
        defer { lock.unlock() }
        if lineOpen {
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            lineOpen = false
        }
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Shows a transient status line (terminal) or nothing (files: use `Progress`).
    func status(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        lineOpen = true
    }

    func endStatus() {
        lock.lock()
        defer { lock.unlock() }
        if lineOpen {
            FileHandle.standardError.write(Data("\n".utf8))
            lineOpen = false
        }
    }
}

/// Progress of one stage: done/total, rate and time left.
public final class Progress {
    let console: Console
    let label: String
    let total: Int
    let unit: String
    let interval: Double
    let start = Date()
    private var lastPrint = Date.distantPast
    public private(set) var done = 0

    public init(_ label: String, total: Int, unit: String = "items", console: Console, interval: Double = 10) {
        self.console = console
        self.label = label
        self.total = total
        self.unit = unit
        self.interval = interval
    }

    /// Records `n` more items; `extra` is appended to the line (e.g. "loss 0.412").
    public func advance(by n: Int = 1, extra: String = "") {
        done += n
        let now = Date()
        let minGap = console.isTerminal ? 0.2 : interval
        if now.timeIntervalSince(lastPrint) >= minGap || done >= total {
            lastPrint = now
            let line = render(extra: extra, now: now)
            if console.quiet { return }
            if console.isTerminal { console.status(line) } else { console.info(line) }
        }
    }

    public func finish(_ summary: String? = nil) {
        if console.isTerminal { console.endStatus() }
        let elapsed = Date().timeIntervalSince(start)
        console.info(summary ?? "\(label): \(done) \(unit) in \(formatDuration(elapsed))")
    }

    public var elapsed: Double { Date().timeIntervalSince(start) }

    func render(extra: String, now: Date) -> String {
        let elapsed = max(1e-9, now.timeIntervalSince(start))
        let rate = Double(done) / elapsed
        let left = rate > 0 ? Double(max(0, total - done)) / rate : .infinity
        let pct = total > 0 ? Int(100 * Double(done) / Double(total)) : 100
        var line = "\(label): \(done)/\(total) \(unit) (\(pct)%) · \(String(format: "%.1f", rate)) \(unit)/s · \(formatDuration(left)) left"
        if !extra.isEmpty { line += " · " + extra }
        return line
    }
}

/// "1h 02m", "3m 05s", "12.3s".
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%dm %02ds", s / 60, s % 60) }
    return String(format: "%dh %02dm", s / 3600, (s % 3600) / 60)
}
