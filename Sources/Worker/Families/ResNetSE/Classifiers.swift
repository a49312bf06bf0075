import CBLAS
import Foundation
import Shared

/// Multinomial logistic regression with L2 regularisation, fitted by Newton's method: the
/// classical classifier on the verifier's emotion vectors.
///
/// Inputs are standardised with the training rows' mean and standard deviation. With x̃ = (x, 1)
/// and one weight row θ_c per class, the fitted parameters minimise
///
///     f(θ) = (1/n) Σ_i −log softmax(θ x̃_i)[y_i] + (λ/2) Σ_c ‖w_c‖²        (biases not penalised)
///
/// λ = 1/n by default, which is scikit-learn's default (C = 1 on the summed loss). f is convex; each
/// Newton step solves H Δ = ∇f with LAPACK's Cholesky solver (dposv) and backtracks until f
/// decreases. The biases get a 1e-10 ridge only to make H positive definite (softmax is
/// unchanged by adding one vector to every θ_c).
public struct LogisticRegression: Codable, Sendable {
    public let classes: Int
    public let dimension: Int
    public let mean: [Double]
    public let std: [Double]
    /// (classes × (dimension + 1)), row-major; the last column is the bias.
    public let theta: [Double]
    public let iterations: Int
    /// ‖∇f‖∞ at the end.
    public let gradientNorm: Double

    public static func fit(_ x: [[Double]], labels: [Int], classes: Int, lambda: Double? = nil, maxIterations: Int = 100) -> LogisticRegression {
        withSingleThreadedBLAS { fitSingleThreaded(x, labels: labels, classes: classes, lambda: lambda, maxIterations: maxIterations) }
    }

    static func fitSingleThreaded(_ x: [[Double]], labels: [Int], classes: Int, lambda: Double?, maxIterations: Int) -> LogisticRegression {
        let n = x.count, d = x.first?.count ?? 0, p = d + 1
        precondition(n > 0 && labels.count == n)
        let (mean, std) = columnStats(x)
        let lam = lambda ?? 1 / Double(n)
        // Standardised design matrix with the bias column (n × p).
        var z = [Double](repeating: 0, count: n * p)
        for i in 0..<n {
            for j in 0..<d { z[i * p + j] = (x[i][j] - mean[j]) / std[j] }
            z[i * p + d] = 1
        }
        var theta = [Double](repeating: 0, count: classes * p)

        func objective(_ th: [Double]) -> (f: Double, probs: [Double]) {
            var probs = [Double](repeating: 0, count: n * classes)
            var f = 0.0
            for i in 0..<n {
                var logits = [Double](repeating: 0, count: classes)
                for c in 0..<classes { var s = 0.0; for j in 0..<p { s += th[c * p + j] * z[i * p + j] }; logits[c] = s }
                let m = logits.max()!
                let lse = m + Foundation.log(logits.reduce(0) { $0 + Foundation.exp($1 - m) })
                f += lse - logits[labels[i]]
                for c in 0..<classes { probs[i * classes + c] = Foundation.exp(logits[c] - lse) }
            }
            f /= Double(n)
            for c in 0..<classes { for j in 0..<d { f += 0.5 * lam * th[c * p + j] * th[c * p + j] } }
            return (f, probs)
        }

        var (f, probs) = objective(theta)
        var iterations = 0, gnorm = Double.infinity
        let size = classes * p
        while iterations < maxIterations {
            // Gradient.
            var g = [Double](repeating: 0, count: size)
            for i in 0..<n {
                for c in 0..<classes {
                    let r = (probs[i * classes + c] - (labels[i] == c ? 1 : 0)) / Double(n)
                    for j in 0..<p { g[c * p + j] += r * z[i * p + j] }
                }
            }
            for c in 0..<classes { for j in 0..<d { g[c * p + j] += lam * theta[c * p + j] } }
            gnorm = g.map(abs).max() ?? 0
            if gnorm < 1e-9 { break }
            // Hessian blocks H_ab = Zᵀ diag(p_a(δ_ab − p_b)/n) Z, by GEMM.
            var h = [Double](repeating: 0, count: size * size)
            var scaled = [Double](repeating: 0, count: n * p), block = [Double](repeating: 0, count: p * p)
            for a in 0..<classes {
                for b in a..<classes {
                    for i in 0..<n {
                        let pa = probs[i * classes + a], pb = probs[i * classes + b]
                        let w = pa * ((a == b ? 1 : 0) - pb) / Double(n)
                        for j in 0..<p { scaled[i * p + j] = w * z[i * p + j] }
                    }
                    scaled.withUnsafeBufferPointer { s in z.withUnsafeBufferPointer { zz in block.withUnsafeMutableBufferPointer { o in
                        Double.gemm(true, false, p, p, n, 1, s.baseAddress!, p, zz.baseAddress!, p, 0, o.baseAddress!, p)
                    } } }
                    for r in 0..<p {
                        for c in 0..<p {
                            h[(a * p + r) * size + b * p + c] = block[r * p + c]
                            h[(b * p + c) * size + a * p + r] = block[r * p + c]
                        }
                    }
                }
            }
            for c in 0..<classes {
                for j in 0..<p { h[(c * p + j) * size + c * p + j] += j < d ? lam : 1e-10 }
            }
            // Δ = H⁻¹ g (H is symmetric, so row- and column-major agree).
            var delta = g
            var info: Int32 = 0
            var nn = Int32(size), one: Int32 = 1, lda = Int32(size), ldb = Int32(size)
            var uplo = CChar(UInt8(ascii: "U"))
            dposv_(&uplo, &nn, &one, &h, &lda, &delta, &ldb, &info)
            if info != 0 { delta = g }   // not positive definite numerically: fall back to a gradient step
            var t = 1.0
            var accepted = false
            while t > 1e-10 {
                let trial = (0..<size).map { theta[$0] - t * delta[$0] }
                let (ft, pt) = objective(trial)
                let decrease = zip(g, delta).reduce(0.0) { $0 + $1.0 * $1.1 }
                if ft <= f - 1e-4 * t * decrease || ft < f {
                    theta = trial; f = ft; probs = pt
                    accepted = true
                    break
                }
                t *= 0.5
            }
            iterations += 1
            if !accepted { break }
        }
        return LogisticRegression(classes: classes, dimension: d, mean: mean, std: std, theta: theta, iterations: iterations, gradientNorm: gnorm)
    }

    /// Class probabilities of one vector.
    public func probabilities(_ v: [Double]) -> [Double] {
        let p = dimension + 1
        var logits = [Double](repeating: 0, count: classes)
        for c in 0..<classes {
            var s = theta[c * p + dimension]
            for j in 0..<dimension { s += theta[c * p + j] * (v[j] - mean[j]) / std[j] }
            logits[c] = s
        }
        let m = logits.max()!
        let e = logits.map { Foundation.exp($0 - m) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    public func predict(_ v: [Double]) -> Int {
        let pr = probabilities(v)
        return pr.indices.max { pr[$0] < pr[$1] }!
    }

    static func columnStats(_ x: [[Double]]) -> (mean: [Double], std: [Double]) {
        let d = x.first?.count ?? 0
        var mean = [Double](repeating: 0, count: d), sq = mean
        for r in x { for j in 0..<d { mean[j] += r[j] } }
        for j in 0..<d { mean[j] /= Double(x.count) }
        for r in x { for j in 0..<d { sq[j] += (r[j] - mean[j]) * (r[j] - mean[j]) } }
        return (mean, sq.map { s in let v = (s / Double(x.count)).squareRoot(); return v > 1e-12 ? v : 1 })
    }
}

/// Cosine nearest class mean: the class whose mean unit vector is closest in angle (the
/// prototype rule the angular prototypical loss trains for).
public struct NearestCentroid: Codable, Sendable {
    public let centroids: [[Double]]

    public static func fit(_ x: [[Double]], labels: [Int], classes: Int) -> NearestCentroid {
        let d = x.first?.count ?? 0
        var sums = [[Double]](repeating: [Double](repeating: 0, count: d), count: classes)
        for (v, y) in zip(x, labels) {
            let u = normalized(v)
            for j in 0..<d { sums[y][j] += u[j] }
        }
        return NearestCentroid(centroids: sums.map(normalized))
    }

    public func predict(_ v: [Double]) -> Int {
        let u = normalized(v)
        let scores = centroids.map { c in zip(c, u).reduce(0) { $0 + $1.0 * $1.1 } }
        return scores.indices.max { scores[$0] < scores[$1] }!
    }
}
