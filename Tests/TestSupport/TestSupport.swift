import Foundation
import XCTest

/// Helpers shared by the test targets: where things are, and how to run `ser` the way users do.
public enum TestEnv {
    /// The repository root (this file is Tests/TestSupport/TestSupport.swift).
    public static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `../shared` beside the checkout (or $SER_SHARED_DIR), if present.
    public static var sharedDir: String? {
        let candidates = [ProcessInfo.processInfo.environment["SER_SHARED_DIR"],
                          (repoRoot as NSString).deletingLastPathComponent + "/shared"].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// A file under ../shared, or XCTSkip when ../shared is absent.
    public static func shared(_ relative: String) throws -> String {
        guard let dir = sharedDir else { throw XCTSkip("../shared is not beside the checkout") }
        let path = dir + "/" + relative
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is absent") }
        return path
    }

    /// The `ser` executable built with the tests (same build folder as the test bundle).
    public static var serBinary: String {
        if let p = ProcessInfo.processInfo.environment["SER_BINARY"] { return p }
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
            ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return bundle.deletingLastPathComponent().appendingPathComponent("ser").path
    }

    /// A fresh temporary directory, removed when the test ends.
    public static func temporaryDirectory(_ test: XCTestCase, _ name: String = "ser-test") -> String {
        let dir = NSTemporaryDirectory() + "\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock {
            if ProcessInfo.processInfo.environment["SER_KEEP_TEST_DIRS"] == nil {
                try? FileManager.default.removeItem(atPath: dir)
            }
        }
        return dir
    }
}

/// The outcome of a command run by a test.
public struct CommandResult {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public var output: String { stdout + stderr }
    /// stderr without mpirun's own notices (blocks between lines of dashes). mpirun writes them
    /// while it still forwards the ranks' output, so a notice can land inside a rank's line.
    public var rankErrors: String {
        stderr.replacingOccurrences(of: "-{20,}\n[\\s\\S]*?-{20,}\n", with: "", options: .regularExpression)
    }
}

public enum Command {
    /// Runs a program to completion, capturing its output (with a time limit that kills it).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           directory: String? = nil, timeout: Double = 600) throws -> CommandResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        final class Sink: @unchecked Sendable { var data = Data() }
        let outSink = Sink(), errSink = Sink()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outSink.data = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errSink.data = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(-p.processIdentifier, SIGKILL)
            p.terminate()
            kill(p.processIdentifier, SIGKILL)
        }
        p.waitUntilExit()
        group.wait()
        return CommandResult(status: p.terminationStatus,
                             stdout: String(decoding: outSink.data, as: UTF8.self),
                             stderr: String(decoding: errSink.data, as: UTF8.self))
    }

    /// Runs `ser` as one process (local mode).
    @discardableResult
    public static func ser(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 600) throws -> CommandResult {
        try run(TestEnv.serBinary, arguments, environment: environment, timeout: timeout)
    }

    /// Runs `mpirun -np N ser …` with the flags this machine needs (root, oversubscription).
    @discardableResult
    public static func mpirun(_ ranks: Int, _ arguments: [String], environment: [String: String] = [:],
                              extraMPIArgs: [String] = [], timeout: Double = 900) throws -> CommandResult {
        guard let mpirun = which("mpirun") else { throw XCTSkip("mpirun is not installed") }
        var env = environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        let args = ["-np", String(ranks), "--oversubscribe", "--bind-to", "none"] + extraMPIArgs + [TestEnv.serBinary] + arguments
        return try run(mpirun, args, environment: env, timeout: timeout)
    }

    public static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}
