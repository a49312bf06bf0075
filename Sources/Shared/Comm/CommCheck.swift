import Foundation

/// A self-test of the MPI layer that users run on a new cluster (`ser info --check`) and the tests
/// run under mpirun: every operation the product relies on, with results checked on every rank.
public enum CommCheck {
    public struct Outcome {
        public var passed: [String] = []
        public var failed: [String] = []
        /// Measured allreduce bandwidth in GB/s of payload (0 in a world of one).
        public var allreduceGBps = 0.0
    }

    /// Collective: every rank must call it. The outcome is complete on rank 0.
    public static func run(_ world: Communicator, payloadMB: Int = 16) -> Outcome {
        var out = Outcome()
        let r = world.rank, n = world.size
        func check(_ name: String, _ ok: Bool) {
            let all = world.allreduce(Int64(ok ? 0 : 1), .sum)
            if all == 0 { out.passed.append(name) } else { out.failed.append("\(name) (\(all) rank(s) saw a wrong result)") }
        }

        world.barrier()
        check("barrier", true)

        var sums = (0..<1000).map { Float($0 + r) }
        world.allreduce(&sums, .sum)
        let expectSum = (0..<1000).map { Float($0 * n + n * (n - 1) / 2) }
        check("allreduce sum (float)", sums == expectSum)

        var maxes = [Double(r), -Double(r)]
        world.allreduce(&maxes, .max)
        check("allreduce max (double)", maxes == [Double(n - 1), 0])

        var big = [Int64](repeating: Int64(r), count: 3)
        world.broadcast(&big, root: n - 1)
        check("broadcast from the last rank", big == [Int64](repeating: Int64(n - 1), count: 3))

        let text = world.broadcast(bytes: r == 0 ? Array("hello from rank 0".utf8) : [], root: 0)
        check("broadcast bytes", String(decoding: text, as: UTF8.self) == "hello from rank 0")

        let gathered = world.allgather([Int64](repeating: Int64(r), count: r + 1))
        check("allgather of uneven parts", gathered.count == n && gathered.enumerated().allSatisfy { $0.element == [Int64](repeating: Int64($0.offset), count: $0.offset + 1) })

        let atRoot = world.gather([Int32(r * 10)], root: 0)
        check("gather to rank 0", r != 0 || atRoot.map { $0.map { $0[0] } } == (0..<n).map { Int32($0 * 10) })

        if n > 1 {
            // A ring: each rank sends to the next and receives from the previous.
            let next = (r + 1) % n, prev = (r + n - 1) % n
            var received: [UInt8] = []
            if r % 2 == 0 {
                world.send(Array("token \(r)".utf8), to: next, tag: 7)
                received = world.receive(from: prev, tag: 7).bytes
            } else {
                received = world.receive(from: prev, tag: 7).bytes
                world.send(Array("token \(r)".utf8), to: next, tag: 7)
            }
            check("send/receive ring", String(decoding: received, as: UTF8.self) == "token \(prev)")
        }

        // Non-blocking allreduce, and bandwidth of a gradient-sized payload.
        let count = payloadMB * (1 << 20) / 4
        var payload = [Float](repeating: Float(r + 1), count: count)
        payload.withUnsafeMutableBufferPointer { buf in
            let req = world.iallreduce(buf, .sum)
            req.wait()
        }
        let expected = Float(n * (n + 1) / 2)
        check("non-blocking allreduce", payload.allSatisfy { $0 == expected })
        if n > 1 {
            world.barrier()
            let t0 = Date()
            let reps = 3
            for _ in 0..<reps { world.allreduce(&payload, .sum) }
            let dt = Date().timeIntervalSince(t0)
            out.allreduceGBps = Double(reps * count * 4) / dt / 1e9
        }
        return out
    }
}
