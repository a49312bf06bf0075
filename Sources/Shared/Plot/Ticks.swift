import Foundation

/// Axis ticks at "nice" numbers: steps of 1, 2 or 5 times a power of ten, so that labels read
/// 0, 0.2, 0.4 … rather than 0, 0.173, 0.346 ….
public struct Ticks: Sendable, Equatable {
    /// The data range the ticks were asked for (after repairs: ordered, finite, non-empty).
    public let lo: Double, hi: Double
    /// The range widened to whole steps: an axis drawn over it starts and ends on a tick.
    public let axisLo: Double, axisHi: Double
    public let step: Double
    /// Tick positions inside lo...hi.
    public let values: [Double]
    /// Tick positions over axisLo...axisHi (for charts whose axis uses the widened range).
    public var axisValues: [Double] { Ticks.multiples(of: step, from: axisLo, to: axisHi) }

    /// Ticks for lo...hi with about `target` intervals (never more). NaN or infinite bounds, and
    /// empty ranges, are repaired so that a chart of bad data still draws.
    public static func nice(_ lo: Double, _ hi: Double, target: Int = 5) -> Ticks {
        var a = lo.isFinite ? lo : (hi.isFinite ? hi : 0)
        var b = hi.isFinite ? hi : a
        if a > b { swap(&a, &b) }
        if a == b {
            let d = a == 0 ? 1 : abs(a) * 0.1
            a -= d
            b += d
        }
        let step = niceStep((b - a) / Double(max(1, target)))
        let axisLo = (a / step).rounded(.down) * step
        let axisHi = (b / step).rounded(.up) * step
        return Ticks(lo: a, hi: b, axisLo: clean(axisLo, step), axisHi: clean(axisHi, step), step: step,
                     values: multiples(of: step, from: a, to: b))
    }

    /// The smallest step of the form {1, 2, 5}·10^k that is at least `raw`.
    public static func niceStep(_ raw: Double) -> Double {
        guard raw.isFinite, raw > 0 else { return 1 }
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let f = raw / magnitude
        // A little slack so that 0.2 / 1 (computed as 0.20000000000000004) stays 0.2.
        let nice: Double = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10
        return nice * magnitude
    }

    static func multiples(of step: Double, from a: Double, to b: Double) -> [Double] {
        let eps = step * 1e-9
        let first = ((a - eps) / step).rounded(.up), last = ((b + eps) / step).rounded(.down)
        guard first <= last, last - first < 10_000 else { return [] }
        return stride(from: first, through: last, by: 1).map { clean($0 * step, step) }
    }

    /// Removes the rounding dust of k·step (0.30000000000000004 → 0.3, −0 → 0).
    static func clean(_ v: Double, _ step: Double) -> Double {
        if abs(v) < step * 1e-9 { return 0 }
        let digits = max(0, min(15, decimals(step)))
        let scale = pow(10, Double(digits))
        let r = (v * scale).rounded() / scale
        return r == 0 ? 0 : r
    }

    /// Decimal places that show a multiple of `step` exactly.
    static func decimals(_ step: Double) -> Int {
        guard step.isFinite, step > 0 else { return 0 }
        return max(0, -Int((log10(step) + 1e-9).rounded(.down)))
    }

    /// A tick label: as many decimals as the step needs, scientific notation for extreme magnitudes.
    public func format(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "∞" : "-∞") }
        if v == 0 { return "0" }
        let big = max(abs(axisLo), abs(axisHi))
        if big >= 1e6 || step < 1e-4 {
            var s = String(format: "%.3g", v)
            if s.contains("e") {
                // 1e+06 → 1e6, 2.5e-05 → 2.5e-5: shorter and still standard.
                s = s.replacingOccurrences(of: "e+0", with: "e").replacingOccurrences(of: "e+", with: "e")
                    .replacingOccurrences(of: "e-0", with: "e-")
            }
            return s
        }
        let s = String(format: "%.\(Ticks.decimals(step))f", v)
        return s == "-0" ? "0" : s
    }
}
