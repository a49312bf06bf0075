import Foundation

/// Wall time per named section of a forward/backward pass (`ser bench train --breakdown`).
public final class Profile {
    public private(set) var seconds: [String: Double] = [:]
    public private(set) var order: [String] = []

    public init() {}

    @inline(__always)
    public func measure<T>(_ name: String, _ body: () -> T) -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        if seconds[name] == nil { order.append(name) }
        seconds[name, default: 0] += dt
        return r
    }

    public func reset() { seconds = [:]; order = [] }

    public var report: String {
        let total = seconds.values.reduce(0, +)
        return order.map { String(format: "%-28@ %8.1f ms  %5.1f%%", $0 as NSString, seconds[$0]! * 1e3, 100 * seconds[$0]! / max(total, 1e-12)) }
            .joined(separator: "\n")
    }
}
