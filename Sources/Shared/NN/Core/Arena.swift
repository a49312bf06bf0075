import Foundation

/// Named activation and workspace buffers, grown on demand and reused across steps so that a
/// training loop allocates only on its first batch.
public final class Arena<S: Real> {
    private var buffers: [String: Buffer<S>] = [:]
    /// Buffers of other element types (batch-norm sums in double, max-pool indices in bytes).
    private var others: [String: UnsafeMutableRawBufferPointer] = [:]

    public init() {}

    deinit { for (_, d) in others { d.deallocate() } }

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

    public func doubles(_ name: String, _ count: Int) -> UnsafeMutablePointer<Double> { other(name, count, Double.self) }

    public func indices(_ name: String, _ count: Int) -> UnsafeMutablePointer<UInt8> { other(name, count, UInt8.self) }

    /// A zeroed buffer of at least `count` values of T under `name` (names are not shared across types).
    private func other<T>(_ name: String, _ count: Int, _: T.Type) -> UnsafeMutablePointer<T> {
        let size = max(1, count) * MemoryLayout<T>.stride
        if let d = others[name], d.count >= size { return d.baseAddress!.assumingMemoryBound(to: T.self) }
        others[name]?.deallocate()
        let d = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        d.initializeMemory(as: UInt8.self, repeating: 0)
        others[name] = d
        return d.baseAddress!.bindMemory(to: T.self, capacity: max(1, count))
    }

    /// Bytes held (for the memory figures in benchmarks).
    public var bytes: Int {
        buffers.values.reduce(0) { $0 + $1.count * MemoryLayout<S>.stride } + others.values.reduce(0) { $0 + $1.count }
    }
}
