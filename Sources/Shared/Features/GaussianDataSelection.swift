import Foundation

/// Gaussian data selection (GDS): the paper's Algorithm 1, per file, with MATLAB semantics.
///
/// For the P segments S₁…S_P of one file (each flattened to n = 96·64 values):
///
///     μ_i = mean(S_i),  σ_i = std(S_i)                    (sample std, N − 1, as MATLAB `std`)
///     G_i = normpdf(S_i, μ_i, σ_i)                        (the density at every element of S_i)
///     R   = corrcoef([G_1 … G_P])                          (P × P Pearson correlations of the columns)
///     C_i = Σ_j R_ij                                       (column sums, R_ii = 1 included)
///     Score_i = (C_i − mean C) / std(C)                   (MATLAB `zscore`: sample std)
///     keep S_i  ⇔  Score_i > T                             (default T = −1)
///
/// A segment that correlates with the rest of its file scores high; an atypical one (a burst of
/// noise, a click, a mostly silent patch) scores low and is dropped. With normally scattered scores,
/// T = −1 drops about 16 %; the paper dropped 15 %.
///
/// Rules where the algorithm is undefined (docs/FEATURES.md has the worked cases):
/// * **Constant segments** (σ_i = 0, e.g. a patch of pure padding or digital silence, where every
///   value is ln(offset)): normpdf with σ = 0 is undefined and G_i has no variance, so its
///   correlations are NaN, which would make every C_j NaN. Such a segment carries no information:
///   it is *dropped* and given no score (`nil`); the others are scored among themselves. The same
///   holds for a segment whose G_i is constant although S_i is not (a two-valued patch symmetric
///   about its mean: never seen in real log-mel, but handled).
/// * **One or two scorable segments**: with one, R = [1] and std(C) = 0; with two, C₁ = C₂ = 1 + r
///   always. MATLAB's `zscore` returns 0 when std is 0, so both are scored 0 and kept whatever T
///   is: there is nothing to compare a segment with.
/// * **All C equal** (P ≥ 3, e.g. segments that are all scaled copies of each other): std(C) = 0,
///   scores 0 as in MATLAB, kept when T < 0.
///
/// The constant 1/(σ√2π) of normpdf does not change a Pearson correlation (it scales a whole
/// column), but G is computed as MATLAB does. Arithmetic is float64 throughout.
public enum GaussianDataSelection {
    public struct Result: Equatable, Sendable {
        /// Score per segment; nil for constant segments (dropped, not scored).
        public var scores: [Double?]
        public var kept: [Bool]
        public var before: Int { kept.count }
        public var after: Int { kept.filter { $0 }.count }
        public var removed: Int { before - after }
        public init(scores: [Double?], kept: [Bool]) {
            self.scores = scores
            self.kept = kept
        }
    }

    /// Scores `count` segments of `length` floats each, stored one after the other in `segments`,
    /// and keeps those with Score > threshold.
    public static func select(_ segments: UnsafeBufferPointer<Float>, count: Int, length: Int, threshold: Double) -> Result {
        precondition(segments.count >= count * length, "GDS: \(segments.count) values for \(count) segments of \(length)")
        let scores = self.scores(segments, count: count, length: length)
        let few = scores.filter { $0 != nil }.count <= 2
        let kept = scores.map { s -> Bool in
            guard let s else { return false }
            return few || s > threshold
        }
        return Result(scores: scores, kept: kept)
    }

    public static func select(_ segments: [Float], count: Int, length: Int, threshold: Double) -> Result {
        segments.withUnsafeBufferPointer { select($0, count: count, length: length, threshold: threshold) }
    }

    /// The z-scored column sums (nil for constant segments).
    public static func scores(_ segments: UnsafeBufferPointer<Float>, count p: Int, length n: Int) -> [Double?] {
        guard p > 0 else { return [] }
        precondition(n >= 2, "GDS needs segments of at least 2 values")
        let base = segments.baseAddress!
        // Standardised G columns (zero mean, unit norm), so that R = Zᵀ Z.
        var z = [Double](repeating: 0, count: p * n)
        var usable: [Int] = []
        z.withUnsafeMutableBufferPointer { zb in
            for i in 0..<p {
                let s = base + i * n
                var mean = 0.0
                for k in 0..<n { mean += Double(s[k]) }
                mean /= Double(n)
                var ss = 0.0
                for k in 0..<n { let d = Double(s[k]) - mean; ss += d * d }
                let sigma = (ss / Double(n - 1)).squareRoot()
                guard sigma > 0, sigma.isFinite else { continue }
                let col = zb.baseAddress! + usable.count * n
                let norm = 1 / (sigma * (2 * Double.pi).squareRoot())
                var gMean = 0.0
                for k in 0..<n {
                    let u = (Double(s[k]) - mean) / sigma
                    let g = norm * exp(-0.5 * u * u)
                    col[k] = g
                    gMean += g
                }
                gMean /= Double(n)
                var gss = 0.0
                for k in 0..<n { col[k] -= gMean; gss += col[k] * col[k] }
                // G without variance (beyond rounding): its correlations are undefined (see above).
                guard gss.isFinite, (gss / Double(n)).squareRoot() > 1e-10 * gMean else { continue }
                let inv = 1 / gss.squareRoot()
                for k in 0..<n { col[k] *= inv }
                usable.append(i)
            }
        }
        var out = [Double?](repeating: nil, count: p)
        let q = usable.count
        if q == 0 { return out }
        if q <= 2 {
            for i in usable { out[i] = 0 }
            return out
        }
        // R = Zᵀ Z (q × q), symmetric: each pair once. Own loop rather than BLAS: the result must not
        // depend on the BLAS kernel or thread count, and files have tens of segments.
        var r = [Double](repeating: 0, count: q * q)
        z.withUnsafeBufferPointer { zb in
            for i in 0..<q {
                r[i * q + i] = 1
                for j in (i + 1)..<max(i + 1, q) {
                    let d = dot(zb.baseAddress! + i * n, zb.baseAddress! + j * n, n)
                    r[i * q + j] = d
                    r[j * q + i] = d
                }
            }
        }
        var c = [Double](repeating: 0, count: q)
        for i in 0..<q { for j in 0..<q { c[j] += r[i * q + j] } }
        let mean = c.reduce(0, +) / Double(q)
        let sd = (c.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(q - 1)).squareRoot()
        // MATLAB zscore: a zero std is replaced by 1, so equal values all score 0. Differences at the
        // level of rounding (all C equal in exact arithmetic) count as equal.
        let equal = sd <= 1e-12 * max(1, abs(mean))
        for (k, i) in usable.enumerated() { out[i] = equal ? 0 : (c[k] - mean) / sd }
        return out
    }

    /// A dot product with eight independent partial sums (a fixed order: deterministic, and fast).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var k = 0
        while k + 8 <= n {
            acc += UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Double>.self) * UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Double>.self)
            k += 8
        }
        var s = acc.sum()
        while k < n { s += a[k] * b[k]; k += 1 }
        return s
    }
}
