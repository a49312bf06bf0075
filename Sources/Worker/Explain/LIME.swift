import CBLAS
import Foundation
import Shared

/// LIME (Ribeiro et al. 2016) on a log-mel patch.
///
/// The patch is cut into regions (`RegionScheme`). Each of `samples` perturbed copies keeps every
/// region with probability ½ and fills the hidden ones with the baseline (the patch mean by
/// default); the first copy is the unperturbed patch, as in the reference implementation. All
/// copies of all the file's patches go through the network in batches of `maxBatch`. A copy with
/// k of R regions kept lies at cosine distance d = 1 − √(k/R) from the original (d = 1 when none
/// is kept) and is weighted π = exp(−d²/σ²) with σ the kernel width. The explanation is the
/// weighted ridge regression
///
///     minimise Σ_i π_i (p_i − b − z_i·β)² + λ‖β‖²        (intercept b not penalised)
///
/// of the target class's probability p on the binary region indicators z, solved through its
/// normal equations with LAPACK's Cholesky solver (dposv). β, one weight per region, is the map.
public enum LIME {
    public struct Settings: Codable, Hashable, Sendable {
        public var samples = 1000
        public var regions = RegionScheme.default
        /// σ of the exponential kernel on cosine distance.
        public var kernelWidth = 0.25
        /// λ of the ridge penalty.
        public var ridge = 1.0
        public init() {}
    }

    public struct PatchResult: Sendable {
        public var regions: Regions
        /// β per region and the intercept b.
        public var weights: [Double]
        public var intercept: Double
        /// Weighted R² of the fit (how well the linear surrogate follows the model locally).
        public var score: Double
        /// β painted onto the patch (frames × bands).
        public var map: [Float]
    }

    /// Explains `count` patches for class `target`; `rng` draws the perturbations.
    public static func explain(_ classifier: PatchClassifier, patches: UnsafePointer<Float>, count: Int, target: Int,
                               settings: Settings, baseline: Baseline, rng: inout SeededGenerator,
                               poll: @escaping () -> Void = {}) throws -> [PatchResult] {
        let frames = classifier.frames, bands = classifier.bands, per = frames * bands
        let n = settings.samples
        precondition(n >= 2, "LIME needs at least 2 samples")
        let regions = (0..<count).map { Regions.make(settings.regions, patch: patches + $0 * per, frames: frames, bands: bands) }
        let fills = (0..<count).map { baseline.fill(patches + $0 * per, count: per) }
        // z[p][s * R + r] = 1 if region r is kept in copy s of patch p.
        var masks: [[UInt8]] = []
        for p in 0..<count {
            let r = regions[p].count
            var z = [UInt8](repeating: 1, count: n * r)
            for s in 1..<n {
                for k in 0..<r { z[s * r + k] = rng.next() >> 63 == 0 ? 0 : 1 }
            }
            masks.append(z)
        }
        var runner = BatchRunner(classifier, poll: poll)
        let probs = try masks.withUnsafeBufferPointer { mb in
            try runner.run(count: count * n) { i, dst in
                let p = i / n, s = i % n
                let src = patches + p * per
                let labels = regions[p].labels
                let r = regions[p].count
                let fill = fills[p]
                mb[p].withUnsafeBufferPointer { z in
                    let row = z.baseAddress! + s * r
                    labels.withUnsafeBufferPointer { lb in
                        for cell in 0..<per { dst[cell] = row[Int(lb[cell])] != 0 ? src[cell] : fill }
                    }
                }
            }
        }
        let classes = classifier.classes
        var results: [PatchResult] = []
        for p in 0..<count {
            let r = regions[p].count
            var x = [Double](repeating: 0, count: n * r), y = [Double](repeating: 0, count: n), pi = [Double](repeating: 0, count: n)
            for s in 0..<n {
                var kept = 0
                for k in 0..<r {
                    let v = masks[p][s * r + k]
                    x[s * r + k] = Double(v)
                    kept += Int(v)
                }
                y[s] = probs[(p * n + s) * classes + target]
                let d = kept == 0 ? 1 : 1 - (Double(kept) / Double(r)).squareRoot()
                pi[s] = Foundation.exp(-(d * d) / (settings.kernelWidth * settings.kernelWidth))
            }
            let fit = try weightedRidge(x: x, y: y, weights: pi, features: r, lambda: settings.ridge)
            results.append(PatchResult(regions: regions[p], weights: fit.coefficients, intercept: fit.intercept,
                                       score: fit.r2, map: regions[p].paint(fit.coefficients)))
        }
        return results
    }

    public struct Fit: Sendable {
        public var coefficients: [Double]
        public var intercept: Double
        /// Weighted coefficient of determination.
        public var r2: Double
    }

    /// Weighted ridge regression with an unpenalised intercept: x is n × features (row-major).
    /// Centres x and y by their weighted means, then solves (Xcᵀ W Xc + λI) β = Xcᵀ W yc with dposv.
    public static func weightedRidge(x: [Double], y: [Double], weights w: [Double], features r: Int, lambda: Double) throws -> Fit {
        let n = y.count
        precondition(x.count == n * r && w.count == n && r >= 1)
        let wsum = w.reduce(0, +)
        guard wsum > 0, wsum.isFinite else { throw ExplainError("LIME: the kernel gave every sample zero weight (raise --lime-kernel-width)") }
        var xm = [Double](repeating: 0, count: r)
        var ym = 0.0
        for i in 0..<n {
            ym += w[i] * y[i]
            for k in 0..<r { xm[k] += w[i] * x[i * r + k] }
        }
        ym /= wsum
        for k in 0..<r { xm[k] /= wsum }
        // Centred, √w-scaled rows: A = Xsᵀ Xs, b = Xsᵀ ys (dsyrk/dgemv would do; r ≤ a few hundred).
        var xs = [Double](repeating: 0, count: n * r), ys = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let sw = w[i].squareRoot()
            ys[i] = sw * (y[i] - ym)
            for k in 0..<r { xs[i * r + k] = sw * (x[i * r + k] - xm[k]) }
        }
        // Column-major = row-major for the symmetric A; b is a column vector.
        var a = [Double](repeating: 0, count: r * r)
        var b = [Double](repeating: 0, count: r)
        xs.withUnsafeBufferPointer { xp in
            a.withUnsafeMutableBufferPointer { ap in
                Double.gemm(true, false, r, r, n, 1, xp.baseAddress!, r, xp.baseAddress!, r, 0, ap.baseAddress!, r)
            }
            ys.withUnsafeBufferPointer { yp in
                b.withUnsafeMutableBufferPointer { bp in
                    Double.gemm(true, false, r, 1, n, 1, xp.baseAddress!, r, yp.baseAddress!, 1, 0, bp.baseAddress!, 1)
                }
            }
        }
        for k in 0..<r { a[k * r + k] += lambda }
        var uplo = Int8(UInt8(ascii: "U")), order = Int32(r), nrhs: Int32 = 1, lda = Int32(r), ldb = Int32(r), info: Int32 = 0
        a.withUnsafeMutableBufferPointer { ap in
            b.withUnsafeMutableBufferPointer { bp in
                dposv_(&uplo, &order, &nrhs, ap.baseAddress!, &lda, bp.baseAddress!, &ldb, &info)
            }
        }
        guard info == 0 else {
            throw ExplainError(info > 0
                ? "LIME: the regression is singular (regions never varied independently; use a ridge penalty --lime-ridge > 0 or more --lime-samples)"
                : "LIME: LAPACK dposv rejected argument \(-info)")
        }
        guard b.allSatisfy({ $0.isFinite }) else { throw ExplainError("LIME: the regression weights are not finite") }
        let intercept = ym - zip(xm, b).reduce(0) { $0 + $1.0 * $1.1 }
        var ssRes = 0.0, ssTot = 0.0
        for i in 0..<n {
            var pred = intercept
            for k in 0..<r { pred += x[i * r + k] * b[k] }
            ssRes += w[i] * (y[i] - pred) * (y[i] - pred)
            ssTot += w[i] * (y[i] - ym) * (y[i] - ym)
        }
        return Fit(coefficients: b, intercept: intercept, r2: ssTot > 0 ? 1 - ssRes / ssTot : 1)
    }
}
