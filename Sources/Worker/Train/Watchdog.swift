import Foundation
import Shared

/// Ends a job whose ranks stop making progress, naming who went silent.
///
/// A hung peer or a dead node leaves the other ranks waiting inside an MPI call forever, and MPI
/// itself cannot tell them who is missing. So every rank also sends a small UDP heartbeat
/// ("rank, step") to every other rank once a second, outside MPI. When a rank's own training has
/// made no progress for `timeout` seconds, it reports the ranks it has not heard from (their host
/// and last step) and aborts the whole job, which lets a supervisor restart it from the last
/// checkpoint.
public final class Watchdog: @unchecked Sendable {
    let world: Communicator
    let timeout: Double
    let console: Console
    private let lock = NSLock()
    private var lastProgress = Date()
    private var step = 0
    private var heard: [(time: Date, step: Int)] = []
    private var peers: [[sockaddr_in]] = []
    private var hosts: [String] = []
    private var socketFD: Int32 = -1
    private var thread: Thread?
    private var running = false

    public init(world: Communicator, timeout: Double, console: Console) {
        self.world = world
        self.timeout = timeout
        self.console = console
    }

    /// Collective: exchanges heartbeat addresses and starts the watching thread.
    public func start() {
        guard timeout > 0 else { return }
        hosts = world.hostNames()
        heard = Array(repeating: (Date(), 0), count: world.size)
        lastProgress = Date()
        var port: UInt16 = 0
        if world.size > 1 {
            socketFD = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = INADDR_ANY
            addr.sin_port = 0
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &len) } }
            port = UInt16(bigEndian: addr.sin_port)
            var tv = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        // Every rank's IPv4 addresses and port, so a heartbeat finds a route whatever the network.
        let mine = Watchdog.localAddresses().map { "\($0):\(port)" }.joined(separator: ",")
        let all = world.allgatherStrings(mine)
        peers = all.map { entry in
            entry.split(separator: ",").compactMap { part -> sockaddr_in? in
                let bits = part.split(separator: ":")
                guard bits.count == 2, let p = UInt16(bits[1]) else { return nil }
                var a = sockaddr_in()
                a.sin_family = sa_family_t(AF_INET)
                a.sin_port = p.bigEndian
                guard inet_pton(AF_INET, String(bits[0]), &a.sin_addr) == 1 else { return nil }
                return a
            }
        }
        running = true
        let t = Thread { [weak self] in self?.loop() }
        t.name = "ser-watchdog"
        thread = t
        t.start()
    }

    public func stop() {
        lock.lock()
        running = false
        lock.unlock()
        if socketFD >= 0 { close(socketFD); socketFD = -1 }
    }

    /// Marks progress (a finished step, or any unit of work that proves the rank is alive).
    public func progress(step: Int) {
        lock.lock()
        lastProgress = Date()
        self.step = step
        lock.unlock()
    }

    private func loop() {
        var lastSend = Date.distantPast
        while true {
            lock.lock()
            let alive = running, since = Date().timeIntervalSince(lastProgress), myStep = step
            lock.unlock()
            if !alive { return }
            if world.size > 1 {
                if Date().timeIntervalSince(lastSend) >= 1 {
                    lastSend = Date()
                    var msg = Array("\(world.rank) \(myStep)".utf8)
                    for (r, addrs) in peers.enumerated() where r != world.rank {
                        for var a in addrs {
                            _ = withUnsafePointer(to: &a) { p in
                                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socketFD, &msg, msg.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                            }
                        }
                    }
                }
                var buf = [UInt8](repeating: 0, count: 64)
                let n = recv(socketFD, &buf, buf.count, 0)
                if n > 0 {
                    let parts = String(decoding: buf[0..<n], as: UTF8.self).split(separator: " ")
                    if parts.count == 2, let r = Int(parts[0]), let s = Int(parts[1]), r >= 0, r < heard.count {
                        lock.lock(); heard[r] = (Date(), s); lock.unlock()
                    }
                }
            } else {
                usleep(200_000)
            }
            if since > timeout {
                world.abort(report(stalledFor: since, step: myStep), code: 3)
            }
        }
    }

    func report(stalledFor seconds: Double, step: Int) -> String {
        lock.lock(); let h = heard; lock.unlock()
        let now = Date()
        let silent = h.indices.filter { $0 != world.rank && now.timeIntervalSince(h[$0].time) > min(timeout / 2, 10) }
        var text = String(format: "watchdog: rank %d on %@ made no progress for %.0f s (after step %d)", world.rank, hosts[world.rank], seconds, step)
        if silent.isEmpty {
            text += "; every other rank still answers, so the job is stuck in communication or I/O"
        } else {
            text += "; no heartbeat from " + silent.map {
                String(format: "rank %d on host %@ (last heard %.0f s ago, at step %d)", $0, hosts[$0], now.timeIntervalSince(h[$0].time), h[$0].step)
            }.joined(separator: ", ")
        }
        return text + ". Ending the job so that it can be restarted from its last checkpoint (ser supervise / ser train --resume)."
    }

    static func localAddresses() -> [String] {
        var out: [String] = []
        var ifap: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&ifap) == 0, let first = ifap else { return ["127.0.0.1"] }
        defer { freeifaddrs(ifap) }
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let cur = p {
            if let sa = cur.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) {
                var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                inet_ntop(AF_INET, &addr, &buf, socklen_t(INET_ADDRSTRLEN))
                out.append(String(cString: buf))
            }
            p = cur.pointee.ifa_next
        }
        return out.isEmpty ? ["127.0.0.1"] : out
    }
}
