import Foundation

/// Wall time per named section of a forward/backward pass (`ser bench train --breakdown`).
public final class Profile {
    public private(set) var seconds: [String: Double] = [:]
    public private(set) var order: [String] = []

    public init() {}

    /// Time spent in sections nested inside the running ones, per nesting level.
    private var nested: [UInt64] = []

    /// Times `body` under `name`, excluding sections measured inside it (a VGGish piece run while
    /// a YAMNet batch norm waits counts as VGGish), so the report adds up to the pass.
    @inline(__always)
    public func measure<T>(_ name: String, _ body: () -> T) -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        nested.append(0)
        let r = body()
        let total = DispatchTime.now().uptimeNanoseconds - t0
        let inner = nested.removeLast()
        if !nested.isEmpty { nested[nested.count - 1] += total }
        if seconds[name] == nil { order.append(name) }
        seconds[name, default: 0] += Double(total - min(total, inner)) * 1e-9
        return r
    }

    public func reset() { seconds = [:]; order = []; nested = [] }

    public var report: String {
        let total = seconds.values.reduce(0, +)
        return order.map { String(format: "%-28@ %8.1f ms  %5.1f%%", $0 as NSString, seconds[$0]! * 1e3, 100 * seconds[$0]! / max(total, 1e-12)) }
            .joined(separator: "\n")
    }
}
