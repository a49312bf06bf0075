import Foundation
import Shared
import Worker

/// A task farm over MPI: rank 0 holds the queue, the other ranks ask for tasks, compute them and
/// send the results back, so fast and slow tasks balance themselves.
///
/// Each worker holds up to `credit` tasks (default 2): while it computes one, the next is already
/// there, so it never waits for rank 0 between tasks. Rank 0 also computes tasks itself when
/// `coordinatorComputes` is set (the default: on a node of few cores an idle coordinator wastes
/// one); it answers workers between the network batches of its own task (`poll`), so a worker
/// waits at most one batch for an answer. With one process, rank 0 runs every task.
///
/// Results (the task's files) travel to rank 0, which alone writes to the output folder: the
/// workers need no shared file system for the outputs, and every finished task is on disk as soon
/// as its result arrives. A rank that dies ends the MPI job (MPI's rule); what was written stays.
final class Farm<Task: Codable> {
    let world: Communicator
    let coordinatorComputes: Bool
    let credit: Int

    init(world: Communicator, coordinatorComputes: Bool = true, credit: Int = 2) {
        precondition(credit >= 1)
        self.world = world
        self.coordinatorComputes = coordinatorComputes
        self.credit = credit
    }

    /// Runs the farm (collective). On rank 0, `tasks` is the queue in the order to hand it out
    /// (other ranks pass []); `work(task, poll)` computes a task on any rank and never throws (a
    /// failure is a result); `done` is called on rank 0 for every result, in arrival order.
    func run(tasks: [Task], work: @escaping (Task, Int, @escaping () -> Void) -> FarmResult,
             done: @escaping (FarmResult) -> Void) throws {
        if world.isRoot {
            try coordinate(tasks, work: work, done: done)
        } else {
            try serveAsWorker(work: work)
        }
    }

    // MARK: - Rank 0

    private func coordinate(_ tasks: [Task], work: @escaping (Task, Int, @escaping () -> Void) -> FarmResult,
                            done: @escaping (FarmResult) -> Void) throws {
        var next = 0
        var outstanding = [Int](repeating: 0, count: world.size)
        var active = Set(1..<world.size)
        var pendingError: Error?
        // Handles one message from a worker: records its result, then tops up its tasks or stops it.
        // `poll` (below) is also what the coordinator's own task calls between network batches.
        let encoder = JSONEncoder()
        func handle(_ message: (bytes: [UInt8], source: Int, tag: Int)) {
            let w = message.source
            if message.tag == FarmTag.result {
                outstanding[w] -= 1
                do {
                    done(try FarmResult.decode(message.bytes))
                } catch {
                    pendingError = pendingError ?? error
                }
            }
            while outstanding[w] < credit, next < tasks.count {
                guard let data = try? encoder.encode(FarmAssignment(index: next, task: tasks[next])) else {
                    preconditionFailure("task \(next) cannot be encoded as JSON")
                }
                world.send(Array(data), to: w, tag: FarmTag.task)
                outstanding[w] += 1
                next += 1
            }
            if outstanding[w] == 0 {
                world.send([], to: w, tag: FarmTag.stop)
                active.remove(w)
            }
        }
        func poll() {
            while !active.isEmpty, world.hasMessage() { handle(world.receive()) }
        }
        let computes = coordinatorComputes || world.size == 1
        while true {
            poll()
            if let e = pendingError { throw e }
            if computes, next < tasks.count {
                let i = next
                next += 1
                var r = work(tasks[i], i, poll)
                r.index = i
                done(r)
                continue
            }
            if active.isEmpty { break }
            handle(world.receive())   // nothing to compute: wait for a worker
        }
        if let e = pendingError { throw e }
    }

    // MARK: - Workers

    private func serveAsWorker(work: (Task, Int, @escaping () -> Void) -> FarmResult) throws {
        let decoder = JSONDecoder()
        world.send([], to: 0, tag: FarmTag.request)
        var local: [FarmAssignment<Task>] = []
        var stopped = false
        func take(_ m: (bytes: [UInt8], source: Int, tag: Int)) throws {
            if m.tag == FarmTag.stop {
                stopped = true
            } else {
                local.append(try decoder.decode(FarmAssignment<Task>.self, from: Data(m.bytes)))
            }
        }
        while true {
            while world.hasMessage(from: 0) { try take(world.receive(from: 0)) }
            if local.isEmpty {
                if stopped { break }
                try take(world.receive(from: 0))
                continue
            }
            let a = local.removeFirst()
            var r = work(a.task, a.index, {})
            r.index = a.index
            r.rank = world.rank
            world.send(r.encode(), to: 0, tag: FarmTag.result)
        }
    }
}
