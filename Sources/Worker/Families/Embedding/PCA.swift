import CBLAS
import Foundation
import Shared

/// Principal component analysis by the eigen-decomposition of the sample covariance (LAPACK
/// dsyevd, divide and conquer).
public struct PCA: Codable, Sendable {
    public let mean: [Double]
    /// Unit principal axes, by decreasing variance; each with its largest-magnitude entry positive
    /// (so the result does not depend on the solver's sign choice).
    public let components: [[Double]]
    /// Variance along each axis (the covariance's eigenvalues).
    public let variances: [Double]
    /// Sum of all eigenvalues (the total variance).
    public let totalVariance: Double

    public var explainedRatio: [Double] { variances.map { totalVariance > 0 ? $0 / totalVariance : 0 } }

    public static func fit(_ x: [[Double]], components k: Int) throws -> PCA {
        try withSingleThreadedBLAS { try fitSingleThreaded(x, components: k) }
    }

    static func fitSingleThreaded(_ x: [[Double]], components k: Int) throws -> PCA {
        let n = x.count, d = x.first?.count ?? 0
        guard n >= 2, d >= 1, k >= 1, k <= d else {
            throw FileError("PCA needs at least 2 vectors and 1 ≤ components ≤ dimensions (got \(n) vectors of \(d), \(k) components)")
        }
        var mean = [Double](repeating: 0, count: d)
        for r in x { for j in 0..<d { mean[j] += r[j] } }
        for j in 0..<d { mean[j] /= Double(n) }
        var centered = [Double](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { centered[i * d + j] = x[i][j] - mean[j] } }
        var cov = [Double](repeating: 0, count: d * d)
        centered.withUnsafeBufferPointer { c in
            cov.withUnsafeMutableBufferPointer { o in
                Double.gemm(true, false, d, d, n, 1 / Double(n - 1), c.baseAddress!, d, c.baseAddress!, d, 0, o.baseAddress!, d)
            }
        }
        // Symmetric, so the row-major matrix is its own column-major form.
        var jobz = CChar(UInt8(ascii: "V")), uplo = CChar(UInt8(ascii: "U"))
        var nn = Int32(d), lda = Int32(d), info: Int32 = 0
        var w = [Double](repeating: 0, count: d)
        var lwork: Int32 = -1, liwork: Int32 = -1
        var wq = [Double](repeating: 0, count: 1), iwq = [Int32](repeating: 0, count: 1)
        dsyevd_(&jobz, &uplo, &nn, &cov, &lda, &w, &wq, &lwork, &iwq, &liwork, &info)
        lwork = Int32(wq[0]); liwork = iwq[0]
        var work = [Double](repeating: 0, count: max(1, Int(lwork))), iwork = [Int32](repeating: 0, count: max(1, Int(liwork)))
        dsyevd_(&jobz, &uplo, &nn, &cov, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
        guard info == 0 else { throw FileError("PCA: the eigen-decomposition failed (LAPACK dsyevd info \(info))") }
        // Eigenvalues ascending; eigenvector j is column j (contiguous in column-major order).
        var comps: [[Double]] = [], vars: [Double] = []
        for j in stride(from: d - 1, through: d - k, by: -1) {
            var v = Array(cov[(j * d) ..< ((j + 1) * d)])
            let big = v.indices.max { abs(v[$0]) < abs(v[$1]) }!
            if v[big] < 0 { v = v.map { -$0 } }
            comps.append(v)
            vars.append(max(0, w[j]))
        }
        return PCA(mean: mean, components: comps, variances: vars, totalVariance: w.reduce(0) { $0 + max(0, $1) })
    }

    public func project(_ v: [Double]) -> [Double] {
        components.map { c in zip(c, zip(v, mean)).reduce(0) { $0 + $1.0 * ($1.1.0 - $1.1.1) } }
    }
}
