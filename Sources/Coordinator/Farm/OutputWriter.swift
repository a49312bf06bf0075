import Foundation
import Shared
import Worker

/// Rank 0's writer: every result's files are written on a background thread, in arrival order.
///
/// Each file is written atomically (temporary file, fsync, rename, directory fsync), and one task
/// makes about five files: on this machine's disk that is tens of milliseconds per task. Done on
/// rank 0's main thread it held up both its own tasks and its answers to the workers (a LIME task
/// took 30× longer on rank 0 than on a worker while results streamed in). Results come back
/// through `collect()` once their files are on disk, so the index never calls a task finished
/// before its files are.
final class OutputWriter: @unchecked Sendable {
    let out: String
    private let queue = DispatchQueue(label: "ser.explain.writer")
    private let lock = NSLock()
    private var written: [FarmResult] = []

    init(out: String) { self.out = out }

    /// Queues a result's files (a failed result passes straight through).
    func submit(_ result: FarmResult) {
        queue.async { [self] in
            var r = result
            if r.ok {
                do { try ExplainOutputs.write(r.files, to: out) } catch {
                    r.ok = false
                    r.reason = "writing the outputs failed: \(error)"
                }
            }
            // The bytes are on disk: keep only the names.
            r.files = r.files.map { TaskOutput(name: $0.name, data: Data()) }
            lock.lock()
            written.append(r)
            lock.unlock()
        }
    }

    /// Queues a text file (the index): written in order with the results, failures reported to `warn`.
    func submit(text: String, to path: String, warn: @escaping @Sendable (String) -> Void) {
        queue.async {
            do { try AtomicFile.write(text, to: path) } catch { warn("\(path): \(error)") }
        }
    }

    /// Results whose files have been written since the last call.
    func collect() -> [FarmResult] {
        lock.lock()
        defer { lock.unlock() }
        let r = written
        written = []
        return r
    }

    /// Waits until every queued result is written.
    func drain() { queue.sync {} }
}
