import Foundation

/// How a parameter is initialised when it does not come from a weights file.
public enum InitRule: String, Codable, Sendable {
    /// N(0, 2/fan_in): keeps ReLU activations' variance steady (He et al. 2015).
    case heNormal
    case zeros
    case ones
}

/// One named tensor of a model.
public struct ParameterSpec: Sendable {
    public let name: String
    public let shape: [Int]
    public let initRule: InitRule
    /// fan-in for He initialisation (conv: kh·kw·in, depthwise: kh·kw, dense: in).
    public let fanIn: Int
    /// Moving statistics of batch norm: part of the model, not trained by gradients.
    public let isState: Bool
    public var count: Int { shape.reduce(1, *) }
}

/// Where every tensor lives in the model's flat buffers.
///
/// Trainable tensors share one flat buffer (and the gradient one of the same size), in the order
/// the model declares them, so that the whole gradient is a single allreduce and a checkpoint a
/// single write (the llm.c layout). Batch-norm moving statistics live in a second flat buffer.
public struct ParameterLayout: Sendable {
    public private(set) var specs: [ParameterSpec] = []
    public private(set) var offsets: [String: Int] = [:]
    public private(set) var trainableCount = 0
    public private(set) var stateCount = 0
    private var index: [String: Int] = [:]

    public init() {}

    @discardableResult
    public mutating func add(_ name: String, _ shape: [Int], _ rule: InitRule, fanIn: Int = 1, state: Bool = false) -> Int {
        precondition(index[name] == nil, "parameter \(name) declared twice")
        let spec = ParameterSpec(name: name, shape: shape, initRule: rule, fanIn: fanIn, isState: state)
        index[name] = specs.count
        specs.append(spec)
        if state {
            offsets[name] = stateCount
            stateCount += spec.count
        } else {
            offsets[name] = trainableCount
            trainableCount += spec.count
        }
        return offsets[name]!
    }

    public func spec(_ name: String) -> ParameterSpec? { index[name].map { specs[$0] } }
    public var trainable: [ParameterSpec] { specs.filter { !$0.isState } }
    public var state: [ParameterSpec] { specs.filter { $0.isState } }

    /// The flat range of every trainable tensor whose name starts with `prefix`.
    public func trainableRange(prefix: String) -> Range<Int>? {
        let ranges = trainable.filter { $0.name.hasPrefix(prefix) }.map { offsets[$0.name]! ..< offsets[$0.name]! + $0.count }
        guard let lo = ranges.map(\.lowerBound).min(), let hi = ranges.map(\.upperBound).max() else { return nil }
        precondition(ranges.reduce(0) { $0 + $1.count } == hi - lo, "parameters under \(prefix) are not contiguous")
        return lo ..< hi
    }

    /// A stable fingerprint of names and shapes (part of the configuration hash).
    public var fingerprint: String {
        XXHash64.hex(XXHash64.hash(Array(specs.map { "\($0.name):\($0.shape):\($0.isState)" }.joined(separator: ";").utf8)))
    }
}

/// A model's numbers: trainable values, their gradients, and the batch-norm state.
public final class Parameters<S: Real>: @unchecked Sendable {
    public let layout: ParameterLayout
    public let values: Buffer<S>
    public let grads: Buffer<S>
    public let state: Buffer<S>

    public init(layout: ParameterLayout) {
        self.layout = layout
        values = Buffer(count: layout.trainableCount)
        grads = Buffer(count: layout.trainableCount)
        state = Buffer(count: layout.stateCount)
    }

    /// Pointer to a tensor's values (trainable or state).
    public func value(_ name: String) -> UnsafeMutablePointer<S> {
        guard let spec = layout.spec(name), let off = layout.offsets[name] else { preconditionFailure("no parameter \(name)") }
        return spec.isState ? state.pointer + off : values.pointer + off
    }

    /// Pointer to a trainable tensor's gradient.
    public func grad(_ name: String) -> UnsafeMutablePointer<S> {
        guard let spec = layout.spec(name), !spec.isState, let off = layout.offsets[name] else { preconditionFailure("no trainable parameter \(name)") }
        return grads.pointer + off
    }

    /// Initialises every tensor by its rule, drawing in declaration order from `rng`.
    public func initialize(using rng: inout SeededGenerator) {
        for spec in layout.specs {
            let p = value(spec.name)
            switch spec.initRule {
            case .zeros: p.update(repeating: 0, count: spec.count)
            case .ones: p.update(repeating: 1, count: spec.count)
            case .heNormal:
                let sigma = (2.0 / Double(max(1, spec.fanIn))).squareRoot()
                for i in 0..<spec.count { p[i] = S(rng.normal() * sigma) }
            }
        }
    }

    /// Copies every tensor (trainable and state) from another instance (any precision).
    public func copy<T: Real>(from other: Parameters<T>) {
        precondition(other.layout.fingerprint == layout.fingerprint, "layouts differ")
        for i in 0..<values.count { values.pointer[i] = S(other.values.pointer[i]) }
        for i in 0..<state.count { state.pointer[i] = S(other.state.pointer[i]) }
    }

    public func tensorValues(_ name: String) -> [S] {
        Array(UnsafeBufferPointer(start: value(name), count: layout.spec(name)!.count))
    }

    public func tensorGrads(_ name: String) -> [S] {
        Array(UnsafeBufferPointer(start: grad(name), count: layout.spec(name)!.count))
    }
}
