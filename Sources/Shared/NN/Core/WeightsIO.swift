import Foundation

/// A weights file that does not fit the model: every problem is listed, each naming the tensor
/// and both shapes, so a user can fix the file (or the model options) in one go.
public struct WeightsMismatch: Error, CustomStringConvertible {
    public let file: String
    public let missing: [(name: String, shape: [Int])]
    public let misshaped: [(name: String, expected: [Int], found: [Int])]
    public let unexpected: [(name: String, shape: [Int])]

    public var description: String {
        var lines = ["\(file) does not fit the model:"]
        for m in missing { lines.append("  missing tensor \(m.name) (the model needs shape \(m.shape))") }
        for m in misshaped { lines.append("  tensor \(m.name) has shape \(m.found), the model needs \(m.expected)") }
        for u in unexpected { lines.append("  unexpected tensor \(u.name) with shape \(u.shape) (not part of this model)") }
        lines.append("  Check that the file was written for this architecture, width and number of classes.")
        return lines.joined(separator: "\n")
    }
}

extension Parameters {
    /// Loads tensors from `file`.
    ///
    /// - `prefix`: model names under this prefix are read from the file without it (a plain YAMNet
    ///   file has `layer1/conv/kernel` where the fusion network has `yamnet/layer1/conv/kernel`).
    ///   Only model tensors under the prefix are expected.
    /// - `ignoring`: file tensors allowed to be unused (e.g. YAMNet's `logits/` classifier).
    /// Returns the names loaded. Throws `WeightsMismatch` listing every problem; nothing is changed then.
    @discardableResult
    public func load(_ file: SafeTensors, source: String, prefix: String = "", ignoring: (String) -> Bool = { _ in false }) throws -> [String] {
        var missing: [(String, [Int])] = [], misshaped: [(String, [Int], [Int])] = [], unexpected: [(String, [Int])] = []
        var plan: [(ParameterSpec, StoredTensor)] = []
        var used = Set<String>()
        for spec in layout.specs where spec.name.hasPrefix(prefix) {
            let key = String(spec.name.dropFirst(prefix.count))
            guard let t = file[key] else { missing.append((key, spec.shape)); continue }
            used.insert(key)
            if t.shape != spec.shape { misshaped.append((key, spec.shape, t.shape)); continue }
            plan.append((spec, t))
        }
        for (name, t) in file.tensors where !used.contains(name) && !ignoring(name) {
            unexpected.append((name, t.shape))
        }
        if !missing.isEmpty || !misshaped.isEmpty || !unexpected.isEmpty {
            throw WeightsMismatch(file: source, missing: missing.sorted { $0.0 < $1.0 },
                                  misshaped: misshaped.sorted { $0.0 < $1.0 }, unexpected: unexpected.sorted { $0.0 < $1.0 })
        }
        for (spec, t) in plan {
            let dst = value(spec.name)
            if S.self == Float.self && t.dtype == .f32 {
                t.data.withUnsafeBytes { raw in
                    UnsafeMutableRawPointer(dst).copyMemory(from: raw.baseAddress!, byteCount: spec.count * 4)
                }
            } else {
                let vals = t.doubles()
                for i in 0..<spec.count { dst[i] = S(vals[i]) }
            }
        }
        return plan.map { $0.0.name }
    }

    /// Every tensor (trainable and state) as safetensors, in this precision.
    public func export(metadata: [String: String] = [:]) -> SafeTensors {
        var st = SafeTensors(metadata: metadata)
        for spec in layout.specs {
            let p = UnsafeBufferPointer(start: value(spec.name), count: spec.count)
            st[spec.name] = StoredTensor(dtype: S.self == Float.self ? .f32 : .f64, shape: spec.shape, data: Data(buffer: p))
        }
        return st
    }
}
