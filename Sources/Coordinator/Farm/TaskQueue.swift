import Foundation
import Shared
import Worker

/// One task of `ser explain`: a file and a method.
struct ExplainTask: Codable {
    var method: ExplainMethod
    var item: ExplainItem
}

/// Rank 0's book of the job: every task, those a previous run already finished (same model, same
/// settings, all files present), the order in which the rest are handed out, and OUT/index.json.
final class TaskQueue {
    let out: String
    let tasks: [ExplainTask]
    private(set) var entries: [ExplainIndex.Entry]
    /// Indices into `tasks` still to compute: the most expensive method first (LIME, occlusion,
    /// Grad-CAM), so that the short tasks fill the gaps at the end and no rank is left with a long one.
    let todo: [Int]
    let reused: Int
    private let template: ExplainIndex
    private var lastWrite = Date.distantPast

    init(items: [ExplainItem], methods: [ExplainMethod], out: String, fingerprint: (ExplainMethod) -> String,
         template: ExplainIndex) {
        self.out = out
        self.template = template
        var tasks: [ExplainTask] = [], entries: [ExplainIndex.Entry] = []
        var todo: [Int] = []
        var reused = 0
        for item in items {
            for m in methods {
                let i = tasks.count
                tasks.append(ExplainTask(method: m, item: item))
                if let done = ExplainOutputs.finished(out: out, method: m, stem: item.stem, fingerprint: fingerprint(m)) {
                    entries.append(.init(file: item.fileID, path: item.relativePath, stem: item.stem, method: m.rawValue, status: "ok",
                                         outputs: done.outputs, rank: done.rank, seconds: done.timing.seconds, reused: true))
                    reused += 1
                } else {
                    entries.append(.init(file: item.fileID, path: item.relativePath, stem: item.stem, method: m.rawValue, status: "pending"))
                    todo.append(i)
                }
            }
        }
        self.tasks = tasks
        self.entries = entries
        self.reused = reused
        // Stable: within a method, files keep their order.
        self.todo = todo.enumerated().sorted { a, b in
            let ca = tasks[a.element].method.cost, cb = tasks[b.element].method.cost
            return ca > cb || (ca == cb && a.offset < b.offset)
        }.map(\.element)
    }

    var pendingTasks: [ExplainTask] { todo.map { tasks[$0] } }

    /// Records the result of todo[k] (rank 0 has written its files).
    func record(_ r: FarmResult, todoIndex k: Int) {
        let i = todo[k]
        entries[i].status = r.ok ? "ok" : "failed"
        entries[i].reason = r.reason
        entries[i].outputs = r.ok ? r.files.map(\.name) : []
        entries[i].rank = r.rank
        entries[i].seconds = r.seconds
    }

    var index: ExplainIndex {
        ExplainIndex(run: template.run, methods: template.methods, labels: template.labels, bandCentersHz: template.bandCentersHz,
                     layer: template.layer, ranks: template.ranks, tasks: entries)
    }

    /// OUT/index.json's text when it is due: at most every 2 s unless `force` (it is a few hundred
    /// bytes per task: rewriting it after every task would cost quadratic time on long jobs; the
    /// tasks' own JSON files are what a rerun trusts).
    func indexText(force: Bool) throws -> String? {
        let now = Date()
        guard force || now.timeIntervalSince(lastWrite) >= 2 else { return nil }
        lastWrite = now
        return try jsonText(index) + "\n"
    }

    var indexPath: String { out + "/index.json" }

    /// Writes OUT/index.json now.
    func writeIndex() throws {
        if let text = try indexText(force: true) { try AtomicFile.write(text, to: indexPath) }
    }
}
