import Foundation
import Shared

/// Exact t-SNE (van der Maaten & Hinton 2008) to two dimensions, with the optimiser settings of the
/// reference implementation and scikit-learn: perplexity 30, early exaggeration 12 for the first
/// 250 of 1000 iterations, momentum 0.5 then 0.8, per-coordinate gains (+0.2 / ×0.8, at least
/// 0.01), learning rate max(n / 12 / 4, 50), and a deterministic start: the PCA projection scaled
/// so that the first coordinate's standard deviation is 1e-4. O(n²) per iteration, fine for the
/// few thousand utterances of a corpus.
public struct TSNE: Sendable {
    public var perplexity = 30.0
    public var iterations = 1000
    public var earlyExaggeration = 12.0
    public var exaggerationIterations = 250

    public init(perplexity: Double = 30, iterations: Int = 1000) {
        self.perplexity = perplexity
        self.iterations = iterations
    }

    /// Row i: p_{j|i} ∝ exp(−β_i ‖x_i − x_j‖²), with β_i found by bisection so that the row's
    /// entropy is ln(perplexity). `d2` holds squared distances (n × n). Returns P (n × n, rows sum to 1).
    public static func conditionalProbabilities(squaredDistances d2: [Double], n: Int, perplexity: Double) -> [Double] {
        let target = Foundation.log(perplexity)
        var p = [Double](repeating: 0, count: n * n)
        p.withUnsafeMutableBufferPointer { pb in
            let out = pb.baseAddress!
            d2.withUnsafeBufferPointer { db in
                let dist = db.baseAddress!
                ComputeThreads.parallelFor(n) { i in
                    var beta = 1.0, lo = 0.0, hi = Double.infinity
                    let row = out + i * n, drow = dist + i * n
                    for _ in 0..<200 {
                        // Shift by the smallest distance so that exp never underflows to all zeros.
                        var dmin = Double.infinity
                        for j in 0..<n where j != i { dmin = min(dmin, drow[j]) }
                        var sum = 0.0, weighted = 0.0
                        for j in 0..<n {
                            if j == i { row[j] = 0; continue }
                            let e = Foundation.exp(-beta * (drow[j] - dmin))
                            row[j] = e
                            sum += e
                            weighted += e * (drow[j] - dmin)
                        }
                        let entropy = Foundation.log(sum) + beta * weighted / sum
                        for j in 0..<n { row[j] /= sum }
                        let diff = entropy - target
                        if abs(diff) < 1e-10 { break }
                        if diff > 0 {
                            lo = beta
                            beta = hi.isInfinite ? beta * 2 : (beta + hi) / 2
                        } else {
                            hi = beta
                            beta = (beta + lo) / 2
                        }
                    }
                }
            }
        }
        return p
    }

    /// Kullback–Leibler divergence KL(P‖Q) of a layout y (n × 2) for the joint P.
    static func divergence(p: [Double], y: [Double], n: Int) -> Double {
        var sum = 0.0
        var q = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n where j != i {
                let dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1]
                q[i * n + j] = 1 / (1 + dx * dx + dy * dy)
                sum += q[i * n + j]
            }
        }
        var kl = 0.0
        for k in 0..<(n * n) where p[k] > 0 { kl += p[k] * Foundation.log(p[k] / max(q[k] / sum, 1e-300)) }
        return kl
    }

    /// The joint probabilities P = (P_cond + P_condᵀ) / 2n (at least 1e-12) of `x`.
    public func jointProbabilities(_ x: [[Double]]) -> [Double] {
        let n = x.count, d = x.first?.count ?? 0
        var d2 = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                var s = 0.0
                for t in 0..<d { let e = x[i][t] - x[j][t]; s += e * e }
                d2[i * n + j] = s
                d2[j * n + i] = s
            }
        }
        let perp = min(perplexity, max(1, Double(n - 1) / 3))
        let cond = TSNE.conditionalProbabilities(squaredDistances: d2, n: n, perplexity: perp)
        var p = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n where j != i { p[i * n + j] = max((cond[i * n + j] + cond[j * n + i]) / Double(2 * n), 1e-12) } }
        return p
    }

    /// Two coordinates per vector, and the final KL divergence.
    public func embed(_ x: [[Double]]) throws -> (points: [[Double]], divergence: Double) {
        let n = x.count
        guard n >= 4 else { throw FileError("t-SNE needs at least 4 vectors (got \(n))") }
        let p = jointProbabilities(x)
        let pca = try PCA.fit(x, components: 2)
        var y = [Double](repeating: 0, count: 2 * n)
        for i in 0..<n { let v = pca.project(x[i]); y[2 * i] = v[0]; y[2 * i + 1] = v[1] }
        var sd = 0.0
        let m0 = (0..<n).reduce(0.0) { $0 + y[2 * $1] } / Double(n)
        for i in 0..<n { sd += (y[2 * i] - m0) * (y[2 * i] - m0) }
        sd = (sd / Double(n)).squareRoot()
        for k in 0..<(2 * n) { y[k] *= sd > 0 ? 1e-4 / sd : 1 }
        let rate = max(Double(n) / earlyExaggeration / 4, 50)
        var update = [Double](repeating: 0, count: 2 * n), gains = [Double](repeating: 1, count: 2 * n)
        var grad = [Double](repeating: 0, count: 2 * n)
        var num = [Double](repeating: 0, count: n * n)
        var rowSums = [Double](repeating: 0, count: n)
        for it in 0..<iterations {
            let exaggeration = it < exaggerationIterations ? earlyExaggeration : 1
            let momentum = it < exaggerationIterations ? 0.5 : 0.8
            y.withUnsafeBufferPointer { yb in
                num.withUnsafeMutableBufferPointer { nb in
                    rowSums.withUnsafeMutableBufferPointer { rb in
                        let yy = yb.baseAddress!, q = nb.baseAddress!, rs = rb.baseAddress!
                        ComputeThreads.parallelFor(n) { i in
                            var s = 0.0
                            for j in 0..<n where j != i {
                                let dx = yy[2 * i] - yy[2 * j], dy = yy[2 * i + 1] - yy[2 * j + 1]
                                let v = 1 / (1 + dx * dx + dy * dy)
                                q[i * n + j] = v
                                s += v
                            }
                            q[i * n + i] = 0
                            rs[i] = s
                        }
                    }
                }
            }
            let z = rowSums.reduce(0, +)
            y.withUnsafeBufferPointer { yb in
                num.withUnsafeBufferPointer { nb in
                    p.withUnsafeBufferPointer { pb in
                        grad.withUnsafeMutableBufferPointer { gb in
                            let yy = yb.baseAddress!, q = nb.baseAddress!, pp = pb.baseAddress!, g = gb.baseAddress!
                            ComputeThreads.parallelFor(n) { i in
                                var gx = 0.0, gy = 0.0
                                for j in 0..<n where j != i {
                                    let w = (exaggeration * pp[i * n + j] - q[i * n + j] / z) * q[i * n + j]
                                    gx += w * (yy[2 * i] - yy[2 * j])
                                    gy += w * (yy[2 * i + 1] - yy[2 * j + 1])
                                }
                                g[2 * i] = 4 * gx
                                g[2 * i + 1] = 4 * gy
                            }
                        }
                    }
                }
            }
            for k in 0..<(2 * n) {
                let same = (update[k] > 0) == (grad[k] > 0)
                gains[k] = max(same ? gains[k] * 0.8 : gains[k] + 0.2, 0.01)
                update[k] = momentum * update[k] - rate * gains[k] * grad[k]
                y[k] += update[k]
            }
        }
        return ((0..<n).map { [y[2 * $0], y[2 * $0 + 1]] }, TSNE.divergence(p: p, y: y, n: n))
    }
}
