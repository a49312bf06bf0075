import Foundation

/// Training checkpoints: a safetensors file compressed with zstd (`*.safetensors.zst`).
///
/// Why this container: `zstd -d` and any safetensors reader open it with no code of ours, the
/// tensors keep their model names (a checkpoint is also a weights file), and the JSON header has
/// room for the training state. Integrity is checked twice: zstd's frame checksum catches damaged
/// or truncated files, and `data_xxh64` in the header (XXH64 of the whole tensor section) catches
/// a file that decompresses but holds other bytes. `format_version` guards future changes.
///
/// Tensors: `param/<name>` (trainable), `state/<name>` (batch-norm statistics), `adam_m/<name>`,
/// `adam_v/<name>`. Metadata: the training position (step, epoch, batch within the epoch), the
/// generator state, the configuration and its hash.
public enum Checkpoint {
    public static let formatVersion = 1
    public static let suffix = ".safetensors.zst"

    public struct State: Codable, Equatable, Sendable {
        /// Optimiser steps done.
        public var step: Int
        /// Epoch in progress (0-based) and the next global batch within it.
        public var epoch: Int
        public var batchInEpoch: Int
        /// Generator state words.
        public var rng: [UInt64]
        /// Hash of everything that must match to continue (model, classes, front end, data).
        public var configHash: String
        /// The configuration itself (JSON), to explain a mismatch.
        public var config: String
        /// Validation figure at this point, if evaluated (for keeping the best).
        public var validation: Double?

        public init(step: Int, epoch: Int, batchInEpoch: Int, rng: [UInt64], configHash: String, config: String, validation: Double? = nil) {
            self.step = step; self.epoch = epoch; self.batchInEpoch = batchInEpoch; self.rng = rng
            self.configHash = configHash; self.config = config; self.validation = validation
        }
    }

    /// The file name for a step (sorts by step).
    public static func fileName(step: Int) -> String { String(format: "ckpt-step%09d", step) + suffix }

    /// Serialises parameters, batch-norm state and Adam moments with the training state.
    public static func encode<S: Real>(params: Parameters<S>, adam: Adam<S>?, state: State) throws -> Data {
        var st = SafeTensors()
        let dtype: SafeTensorsDType = S.self == Float.self ? .f32 : .f64
        func add(_ key: String, _ p: UnsafeMutablePointer<S>, _ spec: ParameterSpec) {
            st[key] = StoredTensor(dtype: dtype, shape: spec.shape, data: Data(buffer: UnsafeBufferPointer(start: p, count: spec.count)))
        }
        for spec in params.layout.specs {
            let off = params.layout.offsets[spec.name]!
            if spec.isState {
                add("state/" + spec.name, params.state.pointer + off, spec)
            } else {
                add("param/" + spec.name, params.values.pointer + off, spec)
                if let adam {
                    add("adam_m/" + spec.name, adam.m.pointer + off, spec)
                    add("adam_v/" + spec.name, adam.v.pointer + off, spec)
                }
            }
        }
        var meta: [String: String] = [
            "format": "sercluster-checkpoint",
            "format_version": String(formatVersion),
            "step": String(state.step),
            "epoch": String(state.epoch),
            "batch_in_epoch": String(state.batchInEpoch),
            "rng": state.rng.map { String($0) }.joined(separator: ","),
            "config_hash": state.configHash,
            "config": state.config,
            "adam_step": String(adam?.step ?? 0),
            "layout": params.layout.fingerprint,
        ]
        if let v = state.validation { meta["validation"] = String(v) }
        st.metadata = meta
        // Checksum of the tensor section: encode once without it, hash the data, store it.
        let plain = st.encode()
        meta["data_xxh64"] = XXHash64.hex(dataSectionHash(plain))
        st.metadata = meta
        return try Zstd.compress(st.encode(), level: 3, threads: 2)
    }

    static func dataSectionHash(_ file: Data) -> UInt64 {
        let n = file.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        return file.withUnsafeBytes { raw in XXHash64.hash(UnsafeRawBufferPointer(rebasing: raw[(8 + n)...])) }
    }

    /// Writes a checkpoint atomically into `directory`; returns its path.
    @discardableResult
    public static func write<S: Real>(directory: String, params: Parameters<S>, adam: Adam<S>?, state: State) throws -> String {
        let path = directory + "/" + fileName(step: state.step)
        try AtomicFile.write(try encode(params: params, adam: adam, state: state), to: path)
        return path
    }

    /// Reads and verifies a checkpoint (zstd checksum, data checksum, format version).
    public static func read(_ path: String) throws -> (state: State, tensors: SafeTensors) {
        let packed = try readFile(path)
        let raw = try Zstd.decompress(packed, source: path)
        return try read(fromDecoded: try SafeTensors.decode(raw, source: path), source: path)
    }

    /// Verifies an already decompressed and decoded checkpoint and returns its state.
    public static func read(fromDecoded st: SafeTensors, source path: String) throws -> (state: State, tensors: SafeTensors) {
        guard st.metadata["format"] == "sercluster-checkpoint" else {
            throw FileError("\(path): not a SERCluster checkpoint (no format tag in its header)")
        }
        guard let v = st.metadata["format_version"].flatMap(Int.init), v <= formatVersion else {
            throw FileError("\(path): checkpoint format version \(st.metadata["format_version"] ?? "?") is newer than this ser (\(formatVersion)); update ser")
        }
        var check = st
        check.metadata["data_xxh64"] = nil
        let expected = st.metadata["data_xxh64"] ?? ""
        let actual = XXHash64.hex(dataSectionHash(check.encode()))
        guard expected == actual else {
            throw FileError("\(path): tensor data checksum mismatch (header \(expected), data \(actual)); the file is damaged")
        }
        func int(_ k: String) throws -> Int {
            guard let s = st.metadata[k], let v = Int(s) else { throw FileError("\(path): header field \(k) is missing or not a number") }
            return v
        }
        let rng = (st.metadata["rng"] ?? "").split(separator: ",").compactMap { UInt64($0) }
        let state = State(step: try int("step"), epoch: try int("epoch"), batchInEpoch: try int("batch_in_epoch"), rng: rng,
                          configHash: st.metadata["config_hash"] ?? "", config: st.metadata["config"] ?? "",
                          validation: st.metadata["validation"].flatMap(Double.init))
        return (state, st)
    }

    /// Loads a checkpoint's tensors into a model and optimiser of the same layout.
    public static func restore<S: Real>(_ tensors: SafeTensors, source: String, into params: Parameters<S>, adam: Adam<S>?) throws {
        var problems: [String] = []
        func copy(_ key: String, _ dst: UnsafeMutablePointer<S>, _ spec: ParameterSpec) {
            guard let t = tensors[key] else { problems.append("missing \(key)"); return }
            guard t.shape == spec.shape else { problems.append("\(key) has shape \(t.shape), the model needs \(spec.shape)"); return }
            let vals = t.doubles()
            for i in 0..<spec.count { dst[i] = S(vals[i]) }
        }
        for spec in params.layout.specs {
            let off = params.layout.offsets[spec.name]!
            if spec.isState {
                copy("state/" + spec.name, params.state.pointer + off, spec)
            } else {
                copy("param/" + spec.name, params.values.pointer + off, spec)
                if let adam {
                    copy("adam_m/" + spec.name, adam.m.pointer + off, spec)
                    copy("adam_v/" + spec.name, adam.v.pointer + off, spec)
                }
            }
        }
        if !problems.isEmpty {
            throw FileError("\(source) does not fit this model:\n  " + problems.prefix(20).joined(separator: "\n  "))
        }
        if let adam { adam.step = Int(tensors.metadata["adam_step"] ?? "0") ?? 0 }
    }

    /// Checkpoint files in a directory, oldest step first.
    public static func list(_ directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("ckpt-step") && $0.hasSuffix(suffix) }.sorted().map { directory + "/" + $0 }
    }

    /// The newest checkpoint that reads and verifies. Damaged newer ones are reported through
    /// `report` and skipped (never deleted: a person may want to look at them).
    public static func newestValid(_ directory: String, report: (String) -> Void) -> (path: String, state: State, tensors: SafeTensors)? {
        for path in list(directory).reversed() {
            do {
                let (state, tensors) = try read(path)
                return (path, state, tensors)
            } catch {
                report("checkpoint \(path) is unusable (\(error)); trying the previous one")
            }
        }
        return nil
    }

    /// Keeps the newest `keep` checkpoints and the best by validation (higher is better); deletes
    /// the others. The newest valid checkpoint is never deleted.
    public static func prune(_ directory: String, keep: Int, validation: [Int: Double]) {
        let all = list(directory)
        guard all.count > 1 else { return }
        func step(_ p: String) -> Int { Int((p as NSString).lastPathComponent.dropFirst("ckpt-step".count).prefix(9)) ?? -1 }
        var keepSet = Set(all.suffix(max(1, keep)))
        if let best = all.filter({ validation[step($0)] != nil }).max(by: { validation[step($0)]! < validation[step($1)]! }) {
            keepSet.insert(best)
        }
        for p in all where !keepSet.contains(p) { try? FileManager.default.removeItem(atPath: p) }
        AtomicFile.syncDirectory(directory)
    }
}
