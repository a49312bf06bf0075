import Foundation
import Shared

/// How LIME cuts a patch into the regions it switches on and off.
///
/// - `grid:TxF` (default `grid:8x4`): T tiles along time × F along frequency (12 frames × 16 mel
///   bands each for a 96 × 64 patch). Tiles at the edges absorb the remainder when the sizes do
///   not divide.
/// - `time:N`: N slices along time, each spanning every band ("when" explanations).
/// - `freq:N`: N groups of adjacent mel bands, each spanning the whole patch ("which band").
/// - `levels:N`: the patch's cells grouped by loudness: N groups of equal size from the quietest
///   to the loudest log-mel values (non-contiguous regions; answers "does the model listen to
///   the loud parts or to the background?").
public enum RegionScheme: Codable, Hashable, Sendable, CustomStringConvertible {
    case grid(time: Int, freq: Int)
    case time(Int)
    case freq(Int)
    case levels(Int)

    public static let `default` = RegionScheme.grid(time: 8, freq: 4)

    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        func count(_ s: String) throws -> Int {
            guard let n = Int(s), n >= 1 else { throw ExplainError("--lime-regions \(text): '\(s)' is not a positive whole number") }
            return n
        }
        guard parts.count == 2 else {
            throw ExplainError("--lime-regions \(text): expected grid:TxF, time:N, freq:N or levels:N (e.g. grid:8x4)")
        }
        switch parts[0] {
        case "grid":
            let tf = parts[1].split(separator: "x").map(String.init)
            guard tf.count == 2 else { throw ExplainError("--lime-regions \(text): a grid is written grid:TxF, e.g. grid:8x4") }
            self = .grid(time: try count(tf[0]), freq: try count(tf[1]))
        case "time": self = .time(try count(parts[1]))
        case "freq": self = .freq(try count(parts[1]))
        case "levels": self = .levels(try count(parts[1]))
        default:
            throw ExplainError("--lime-regions \(text): unknown kind '\(parts[0])'; use grid:TxF, time:N, freq:N or levels:N")
        }
    }

    public var description: String {
        switch self {
        case .grid(let t, let f): return "grid:\(t)x\(f)"
        case .time(let n): return "time:\(n)"
        case .freq(let n): return "freq:\(n)"
        case .levels(let n): return "levels:\(n)"
        }
    }

    /// A problem with this scheme for a frames × bands patch (nil: usable).
    public func problem(frames: Int, bands: Int) -> String? {
        switch self {
        case .grid(let t, let f):
            if t > frames || f > bands { return "grid:\(t)x\(f) has more tiles than the \(frames) × \(bands) patch has cells" }
        case .time(let n): if n > frames { return "time:\(n) has more slices than the patch's \(frames) frames" }
        case .freq(let n): if n > bands { return "freq:\(n) has more groups than the patch's \(bands) bands" }
        case .levels(let n): if n > frames * bands { return "levels:\(n) has more groups than the patch has cells" }
        }
        return nil
    }

    public init(from decoder: Decoder) throws {
        self = try RegionScheme(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A partition of a frames × bands patch into `count` regions.
public struct Regions: Sendable {
    public let frames: Int
    public let bands: Int
    public let count: Int
    /// Region of every cell, frame-major (`labels[f * bands + b]`).
    public let labels: [Int32]

    public init(frames: Int, bands: Int, count: Int, labels: [Int32]) {
        precondition(labels.count == frames * bands, "\(labels.count) labels for \(frames) × \(bands)")
        precondition(labels.allSatisfy { $0 >= 0 && Int($0) < count }, "labels outside 0..<\(count)")
        self.frames = frames
        self.bands = bands
        self.count = count
        self.labels = labels
    }

    /// Tiles: `t` along time and `f` along frequency; tile edges at ⌊i·frames/t⌋.
    public static func grid(frames: Int, bands: Int, time t: Int, freq f: Int) -> Regions {
        precondition(t >= 1 && f >= 1 && t <= frames && f <= bands)
        var labels = [Int32](repeating: 0, count: frames * bands)
        for i in 0..<frames {
            let ti = i * t / frames
            for j in 0..<bands { labels[i * bands + j] = Int32(ti * f + j * f / bands) }
        }
        return Regions(frames: frames, bands: bands, count: t * f, labels: labels)
    }

    /// The scheme applied to one patch (`patch` is needed only by `levels`).
    public static func make(_ scheme: RegionScheme, patch: UnsafePointer<Float>, frames: Int, bands: Int) -> Regions {
        switch scheme {
        case .grid(let t, let f): return grid(frames: frames, bands: bands, time: t, freq: f)
        case .time(let n): return grid(frames: frames, bands: bands, time: n, freq: 1)
        case .freq(let n): return grid(frames: frames, bands: bands, time: 1, freq: n)
        case .levels(let n):
            // Rank the cells by value (ties by position, so the partition is deterministic).
            let cells = frames * bands
            let order = (0..<cells).sorted { a, b in patch[a] < patch[b] || (patch[a] == patch[b] && a < b) }
            var labels = [Int32](repeating: 0, count: cells)
            for (rank, cell) in order.enumerated() { labels[cell] = Int32(rank * n / cells) }
            return Regions(frames: frames, bands: bands, count: n, labels: labels)
        }
    }

    /// Cells per region.
    public var sizes: [Int] {
        var s = [Int](repeating: 0, count: count)
        for l in labels { s[Int(l)] += 1 }
        return s
    }

    /// Spreads one value per region over the cells (the LIME map).
    public func paint(_ values: [Double]) -> [Float] {
        precondition(values.count == count)
        return labels.map { Float(values[Int($0)]) }
    }
}

/// What hidden cells are filled with (LIME, occlusion, deletion/insertion curves).
public enum Baseline: Codable, Hashable, Sendable, CustomStringConvertible {
    /// The mean of the patch being explained (default): removes the region's structure, keeps its level.
    case mean
    /// The patch's minimum: near silence in a log-mel patch.
    case minimum
    /// A fixed log-mel value (e.g. −6.9 = ln(0.001), digital silence).
    case value(Float)

    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "mean": self = .mean
        case "min", "minimum": self = .minimum
        default:
            guard let v = Float(text), v.isFinite else {
                throw ExplainError("--baseline \(text): expected mean, min or a number (a log-mel value, e.g. -6.9)")
            }
            self = .value(v)
        }
    }

    public var description: String {
        switch self {
        case .mean: return "mean"
        case .minimum: return "min"
        case .value(let v): return String(v)
        }
    }

    /// The fill value for one patch of `n` values.
    public func fill(_ patch: UnsafePointer<Float>, count n: Int) -> Float {
        switch self {
        case .mean:
            var s = 0.0
            for i in 0..<n { s += Double(patch[i]) }
            return Float(s / Double(max(n, 1)))
        case .minimum:
            var m = Float.infinity
            for i in 0..<n { m = min(m, patch[i]) }
            return m
        case .value(let v): return v
        }
    }

    public init(from decoder: Decoder) throws {
        self = try Baseline(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
