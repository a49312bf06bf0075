import Foundation
import Shared

/// Silhouette coefficients (Rousseeuw 1987) with Euclidean distances.
///
/// For point i in cluster A: a(i) = mean distance to the other points of A, b(i) = the smallest mean
/// distance to the points of another cluster, s(i) = (b − a) / max(a, b); a point alone in its
/// cluster has s = 0 (scikit-learn's convention). The score is the mean of s over all points:
/// near 1 for compact, well separated clusters, near 0 for overlapping ones, negative when points
/// sit closer to another cluster than to their own.
public enum Silhouette {
    public struct Result: Codable, Equatable, Sendable {
        public var mean: Double
        /// Mean s per cluster label (only labels that occur).
        public var perCluster: [Int: Double]
        public var points: [Double]
    }

    /// nil when fewer than two clusters have points (the score is undefined).
    public static func compute(_ x: [[Double]], labels: [Int]) -> Result? {
        precondition(x.count == labels.count)
        let clusters = Array(Set(labels)).sorted()
        guard clusters.count >= 2 else { return nil }
        let n = x.count, d = x.first?.count ?? 0
        let index = Dictionary(uniqueKeysWithValues: clusters.enumerated().map { ($1, $0) })
        let sizes = clusters.map { c in labels.filter { $0 == c }.count }
        var flat = [Double](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { flat[i * d + j] = x[i][j] } }
        var s = [Double](repeating: 0, count: n)
        flat.withUnsafeBufferPointer { fb in
            let f = fb.baseAddress!
            s.withUnsafeMutableBufferPointer { sb in
                let out = sb.baseAddress!
                ComputeThreads.parallelFor(n) { i in
                    var sums = [Double](repeating: 0, count: clusters.count)
                    for j in 0..<n where j != i {
                        var dist = 0.0
                        for t in 0..<d { let e = f[i * d + t] - f[j * d + t]; dist += e * e }
                        sums[index[labels[j]]!] += dist.squareRoot()
                    }
                    let own = index[labels[i]]!
                    guard sizes[own] > 1 else { out[i] = 0; return }
                    let a = sums[own] / Double(sizes[own] - 1)
                    var b = Double.infinity
                    for k in clusters.indices where k != own && sizes[k] > 0 { b = min(b, sums[k] / Double(sizes[k])) }
                    let m = max(a, b)
                    out[i] = m > 0 ? (b - a) / m : 0
                }
            }
        }
        var per: [Int: Double] = [:]
        for c in clusters {
            let v = (0..<n).filter { labels[$0] == c }.map { s[$0] }
            per[c] = v.reduce(0, +) / Double(v.count)
        }
        return Result(mean: s.reduce(0, +) / Double(n), perCluster: per, points: s)
    }
}
