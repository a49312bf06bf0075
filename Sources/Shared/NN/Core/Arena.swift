import Foundation

/// Named activation and workspace buffers, grown on demand and reused across steps so that a
/// training loop allocates only on its first batch.
public final class Arena<S: Real> {
    private var buffers: [String: Buffer<S>] = [:]
    private var doubles: [String: UnsafeMutableBufferPointer<Double>] = [:]

    public init() {}

    deinit { for (_, d) in doubles { d.deallocate() } }

    /// A buffer of at least `count` elements (contents undefined unless just created: zero).
    public func get(_ name: String, _ count: Int) -> UnsafeMutablePointer<S> {
        if let b = buffers[name], b.count >= count { return b.pointer }
        let b = Buffer<S>(count: count)
        buffers[name] = b
        return b.pointer
    }

    /// The buffer stored under `name` (it must have been created by the forward pass).
    public func existing(_ name: String) -> UnsafeMutablePointer<S> {
        guard let b = buffers[name] else { preconditionFailure("activation \(name) was not computed") }
        return b.pointer
    }

    public func has(_ name: String) -> Bool { buffers[name] != nil }

    public func doubles(_ name: String, _ count: Int) -> UnsafeMutablePointer<Double> {
        if let d = doubles[name], d.count >= count { return d.baseAddress! }
        doubles[name]?.deallocate()
        let d = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(1, count))
        d.initialize(repeating: 0)
        doubles[name] = d
        return d.baseAddress!
    }

    /// Bytes held (for the memory figures in benchmarks).
    public var bytes: Int {
        buffers.values.reduce(0) { $0 + $1.count * MemoryLayout<S>.stride } + doubles.values.reduce(0) { $0 + $1.count * 8 }
    }
}
