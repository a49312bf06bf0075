import Foundation

/// Runs this `ser` executable as a child process (the stages of `ser demo` and `ser experiment`),
/// its output passed through, and returns its exit status (128 + signal if it was killed).
enum SerProcess {
    static func run(_ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        // Let the child choose its BLAS kernel itself (it re-executes once if needed).
        env["SER_BLAS_REEXEC"] = nil
        p.environment = env
        try p.run()
        p.waitUntilExit()
        return p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    }
}
