import Foundation

/// The safetensors format: the project's interchange format for weights, maps and checkpoints.
///
/// Layout: 8 bytes little-endian header length N, N bytes of JSON (`{name: {dtype, shape,
/// data_offsets}}` plus an optional `__metadata__` string map), then the raw little-endian,
/// row-major tensor bytes. Any safetensors reader (Python's `safetensors`, numpy with a few
/// lines) opens what this writes.
public enum SafeTensorsDType: String, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

public struct SafeTensorsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A tensor as stored: dtype, shape and its bytes.
public struct StoredTensor: Sendable {
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var data: Data

    public var count: Int { shape.reduce(1, *) }

    public init(dtype: SafeTensorsDType, shape: [Int], data: Data) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    public init(_ values: [Float], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        self.init(dtype: .f32, shape: shape, data: values.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    public init(_ values: [Double], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        self.init(dtype: .f64, shape: shape, data: values.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    public init(_ values: [Int64], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        self.init(dtype: .i64, shape: shape, data: values.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    public init(_ values: [UInt8], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        self.init(dtype: .u8, shape: shape, data: Data(values))
    }

    /// The values as Double, converting from any float or integer dtype.
    public func doubles() -> [Double] {
        data.withUnsafeBytes { raw -> [Double] in
            let n = count
            switch dtype {
            case .f64: return (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
            case .f32: return (0..<n).map { Double(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self)) }
            case .i64: return (0..<n).map { Double(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .i32: return (0..<n).map { Double(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            case .i16: return (0..<n).map { Double(raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
            case .i8: return (0..<n).map { Double(raw.load(fromByteOffset: $0, as: Int8.self)) }
            case .u8, .bool: return (0..<n).map { Double(raw.load(fromByteOffset: $0, as: UInt8.self)) }
            case .bf16: return (0..<n).map { Double(Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16)) }
            case .f16:
                #if arch(x86_64) || arch(arm64)
                return (0..<n).map { Double(Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
                #else
                return []
                #endif
            }
        }
    }

    /// The values as Float (converting like `doubles()`).
    public func floats() -> [Float] {
        if dtype == .f32 {
            return data.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        }
        return doubles().map { Float($0) }
    }

    public func int64s() -> [Int64] {
        if dtype == .i64 {
            return data.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) } }
        }
        return doubles().map { Int64($0) }
    }
}

/// A whole safetensors file in memory: named tensors plus string metadata.
public struct SafeTensors: Sendable {
    public var tensors: [String: StoredTensor]
    public var metadata: [String: String]

    public init(tensors: [String: StoredTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    public subscript(name: String) -> StoredTensor? {
        get { tensors[name] }
        set { tensors[name] = newValue }
    }

    /// The tensor `name`, or an error naming the file and the missing tensor.
    public func require(_ name: String, in file: String = "safetensors file") throws -> StoredTensor {
        guard let t = tensors[name] else {
            throw SafeTensorsError("\(file): no tensor named '\(name)'")
        }
        return t
    }

    // MARK: Reading

    public static func read(path: String) throws -> SafeTensors {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw SafeTensorsError("\(path): cannot read (\(error.localizedDescription))")
        }
        return try decode(data, source: path)
    }

    public static func decode(_ data: Data, source: String = "safetensors data") throws -> SafeTensors {
        guard data.count >= 8 else { throw SafeTensorsError("\(source): too short to be safetensors (\(data.count) bytes)") }
        let n = data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 0, 8 + n <= data.count else {
            throw SafeTensorsError("\(source): header length \(n) does not fit in \(data.count) bytes (truncated or not safetensors)")
        }
        let headerData = data.subdata(in: data.startIndex + 8 ..< data.startIndex + 8 + n)
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw SafeTensorsError("\(source): header is not a JSON object")
        }
        let dataStart = 8 + n
        var out = SafeTensors()
        for (key, value) in header {
            if key == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (k, v) in m { out.metadata[k] = (v as? String) ?? "\(v)" }
                }
                continue
            }
            guard let d = value as? [String: Any],
                  let dtypeName = d["dtype"] as? String,
                  let shapeAny = d["shape"] as? [Any],
                  let offsAny = d["data_offsets"] as? [Any], offsAny.count == 2 else {
                throw SafeTensorsError("\(source): tensor '\(key)' has a malformed header entry")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw SafeTensorsError("\(source): tensor '\(key)' has unsupported dtype \(dtypeName)")
            }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            let offs = offsAny.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, offs.count == 2 else {
                throw SafeTensorsError("\(source): tensor '\(key)' has non-integer shape or offsets")
            }
            let count = shape.reduce(1, *)
            guard offs[0] >= 0, offs[1] >= offs[0], offs[1] - offs[0] == count * dtype.size,
                  dataStart + offs[1] <= data.count else {
                throw SafeTensorsError("\(source): tensor '\(key)' offsets \(offs) do not match shape \(shape) × \(dtype.size) bytes within \(data.count - dataStart) data bytes (truncated?)")
            }
            let begin = data.startIndex + dataStart + offs[0]
            out.tensors[key] = StoredTensor(dtype: dtype, shape: shape, data: data.subdata(in: begin ..< begin + count * dtype.size))
        }
        return out
    }

    // MARK: Writing

    /// The file's bytes: tensors sorted by name, each 8-byte aligned.
    public func encode() -> Data {
        let names = tensors.keys.sorted()
        var entries: [String] = []
        var offset = 0
        for name in names {
            let t = tensors[name]!
            let shape = t.shape.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}")
            offset += t.data.count
            offset = (offset + 7) / 8 * 8
        }
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            entries.insert("\"__metadata__\":{\(m)}", at: 0)
        }
        var header = Data(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = Data(capacity: 8 + header.count + offset)
        var n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(header)
        for name in names {
            let t = tensors[name]!
            out.append(t.data)
            let pad = (8 - t.data.count % 8) % 8
            if pad > 0 { out.append(Data(count: pad)) }
        }
        return out
    }

    /// Writes the file atomically.
    public func write(path: String) throws {
        try AtomicFile.write(encode(), to: path)
    }
}

/// A JSON string literal with the escapes JSON requires.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
