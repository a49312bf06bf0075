import Foundation
import Shared
import Worker
import XCTest

/// LIME: the ridge solver against closed forms, the region schemes, and the method recovering
/// the known region weights of a model built to depend on known regions.
final class LIMETests: XCTestCase {
    /// Exact linear data: y = 0.3 + 2 z₁ − z₂ + 0·z₃ is fitted exactly (λ → 0) whatever the weights.
    func testRidgeRecoversExactLinearData() throws {
        var rng = SeededGenerator(seed: 1)
        let n = 40, r = 3
        var x = [Double](), y = [Double](), w = [Double]()
        for _ in 0..<n {
            let z = (0..<r).map { _ in Double(rng.below(2)) }
            x += z
            y.append(0.3 + 2 * z[0] - z[1])
            w.append(0.1 + rng.uniform())
        }
        let fit = try LIME.weightedRidge(x: x, y: y, weights: w, features: r, lambda: 1e-10)
        XCTAssertEqual(fit.coefficients[0], 2, accuracy: 1e-7)
        XCTAssertEqual(fit.coefficients[1], -1, accuracy: 1e-7)
        XCTAssertEqual(fit.coefficients[2], 0, accuracy: 1e-7)
        XCTAssertEqual(fit.intercept, 0.3, accuracy: 1e-7)
        XCTAssertEqual(fit.r2, 1, accuracy: 1e-9)
    }

    /// With a penalty, against the 2 × 2 normal equations solved by Cramer's rule in the test.
    func testRidgeAgainstCramersRule() throws {
        let x: [Double] = [1, 0, 0, 1, 1, 1, 0, 0, 1, 0]   // 5 samples × 2 features
        let y: [Double] = [0.9, 0.2, 1.4, 0.1, 0.8]
        let w: [Double] = [1, 0.5, 2, 1, 0.25]
        let lambda = 0.7
        let fit = try LIME.weightedRidge(x: x, y: y, weights: w, features: 2, lambda: lambda)
        // Weighted centring, then (XcᵀWXc + λI) β = XcᵀW yc.
        let sw = w.reduce(0, +)
        let m0 = (0..<5).reduce(0.0) { $0 + w[$1] * x[2 * $1] } / sw
        let m1 = (0..<5).reduce(0.0) { $0 + w[$1] * x[2 * $1 + 1] } / sw
        let my = (0..<5).reduce(0.0) { $0 + w[$1] * y[$1] } / sw
        var a = [0.0, 0, 0, 0], b = [0.0, 0]
        for i in 0..<5 {
            let u = x[2 * i] - m0, v = x[2 * i + 1] - m1, t = y[i] - my
            a[0] += w[i] * u * u; a[1] += w[i] * u * v; a[3] += w[i] * v * v
            b[0] += w[i] * u * t; b[1] += w[i] * v * t
        }
        a[2] = a[1]
        a[0] += lambda; a[3] += lambda
        let det = a[0] * a[3] - a[1] * a[2]
        let beta0 = (b[0] * a[3] - a[1] * b[1]) / det, beta1 = (a[0] * b[1] - a[2] * b[0]) / det
        XCTAssertEqual(fit.coefficients[0], beta0, accuracy: 1e-12)
        XCTAssertEqual(fit.coefficients[1], beta1, accuracy: 1e-12)
        XCTAssertEqual(fit.intercept, my - m0 * beta0 - m1 * beta1, accuracy: 1e-12)
    }

    /// A constant feature with no penalty is singular: a clear error, not garbage.
    func testSingularRegressionIsAnError() {
        XCTAssertThrowsError(try LIME.weightedRidge(x: [1, 1, 1, 1], y: [1, 2, 3, 4], weights: [1, 1, 1, 1], features: 1, lambda: 0)) {
            XCTAssertTrue("\($0)".contains("singular"), "\($0)")
        }
    }

    func testRegionSchemes() throws {
        let g = Regions.grid(frames: 96, bands: 64, time: 8, freq: 4)
        XCTAssertEqual(g.count, 32)
        XCTAssertEqual(Set(g.sizes), [12 * 16])
        XCTAssertEqual(g.labels[0], 0)
        XCTAssertEqual(g.labels[95 * 64 + 63], 31)
        XCTAssertEqual(g.labels[12 * 64 + 16], 5)   // second tile in time, second in frequency
        // Uneven sizes: 10 frames in 3 slices → 4, 3, 3 frames (slice of frame i: ⌊3i/10⌋), × 2 bands.
        XCTAssertEqual(Regions.grid(frames: 10, bands: 2, time: 3, freq: 1).sizes, [8, 6, 6])
        let patch = (0..<(96 * 64)).map { Float($0 % 7) }
        let levels = patch.withUnsafeBufferPointer { Regions.make(.levels(4), patch: $0.baseAddress!, frames: 96, bands: 64) }
        XCTAssertEqual(levels.sizes, [1536, 1536, 1536, 1536])
        // Every cell of a lower level is no louder than every cell of a higher one.
        for l in 0..<3 {
            let hi = (0..<patch.count).filter { levels.labels[$0] == l }.map { patch[$0] }.max()!
            let lo = (0..<patch.count).filter { levels.labels[$0] == l + 1 }.map { patch[$0] }.min()!
            XCTAssertLessThanOrEqual(hi, lo)
        }
        XCTAssertEqual(try RegionScheme(parsing: "grid:6x2"), .grid(time: 6, freq: 2))
        XCTAssertEqual(try RegionScheme(parsing: "freq:8"), .freq(8))
        XCTAssertThrowsError(try RegionScheme(parsing: "grid:6"))
        XCTAssertThrowsError(try RegionScheme(parsing: "blobs:3"))
        XCTAssertNotNil(RegionScheme.grid(time: 100, freq: 1).problem(frames: 96, bands: 64))
    }

    /// A patch whose grid tiles hold constant values v_r, and a model p = c + Σ w_r · mean_r(x).
    /// Hiding tile r replaces its mean by the fill m (the patch mean), so p is exactly linear in
    /// the tile indicators with coefficients w_r · (v_r − m): what LIME must return.
    func knownRegionsCase() -> (RegionScorer, [Float], [Double]) {
        let regions = Regions.grid(frames: 96, bands: 64, time: 8, freq: 4)
        var rng = SeededGenerator(seed: 9)
        let values = (0..<32).map { _ in -4 + 3 * rng.uniform() }
        let patch = regions.labels.map { Float(values[Int($0)]) }
        var w = [Double](repeating: 0, count: 32)
        w[3] = 0.08; w[17] = -0.05; w[30] = 0.12; w[9] = 0.03
        let m = patch.reduce(0.0) { $0 + Double($1) } / Double(patch.count)
        let expected = (0..<32).map { w[$0] * (values[$0] - m) }
        return (RegionScorer(regions: regions, weights: w, bias: 0.5, maxBatch: 128), patch, expected)
    }

    func testRecoversKnownRegionWeights() throws {
        let (model, patch, expected) = knownRegionsCase()
        var s = LIME.Settings()
        s.samples = 400
        s.ridge = 1e-9
        var rng = SeededGenerator(seed: 2)
        let r = try patch.withUnsafeBufferPointer {
            try LIME.explain(model, patches: $0.baseAddress!, count: 1, target: 0, settings: s, baseline: .mean, rng: &rng)
        }[0]
        XCTAssertEqual(r.weights.count, 32)
        for k in 0..<32 { XCTAssertEqual(r.weights[k], expected[k], accuracy: 1e-6, "region \(k)") }
        XCTAssertEqual(r.score, 1, accuracy: 1e-9)
        // The map paints each tile with its weight.
        for cell in [0, 1000, 3000, 6143] { XCTAssertEqual(Double(r.map[cell]), r.weights[Int(r.regions.labels[cell])], accuracy: 1e-6) }
        // 400 copies in batches of 128: 4 calls.
        XCTAssertEqual(model.calls, 4)
    }

    /// With the default penalty (λ = 1) the weights shrink a little but keep their order and sign,
    /// and the regions the model ignores stay near zero; two patches, one batch stream.
    func testDefaultSettingsRankTheKnownRegions() throws {
        let (model, patch, expected) = knownRegionsCase()
        var rng = SeededGenerator(seed: 4)
        let two = patch + patch
        let rs = try two.withUnsafeBufferPointer {
            try LIME.explain(model, patches: $0.baseAddress!, count: 2, target: 0, settings: LIME.Settings(), baseline: .mean, rng: &rng)
        }
        XCTAssertEqual(rs.count, 2)
        for r in rs {
            let top = (0..<32).sorted { abs(r.weights[$0]) > abs(r.weights[$1]) }.prefix(4)
            let truth = (0..<32).sorted { abs(expected[$0]) > abs(expected[$1]) }.prefix(4)
            XCTAssertEqual(Set(top), Set(truth))
            for k in truth { XCTAssertEqual(r.weights[k].sign, expected[k].sign) }
            let ignored = (0..<32).filter { expected[$0] == 0 }.map { abs(r.weights[$0]) }.max()!
            XCTAssertLessThan(ignored, 0.1 * expected.map(abs).max()!)
        }
        // Different perturbations for the two patches, same conclusions.
        XCTAssertNotEqual(rs[0].weights, rs[1].weights)
    }

    /// The same seed gives the same explanation; the class explained matters.
    func testDeterministicForASeed() throws {
        let (model, patch, _) = knownRegionsCase()
        var s = LIME.Settings()
        s.samples = 50
        func run(_ seed: UInt64, _ target: Int) throws -> [Double] {
            var rng = SeededGenerator(seed: seed)
            return try patch.withUnsafeBufferPointer {
                try LIME.explain(model, patches: $0.baseAddress!, count: 1, target: target, settings: s, baseline: .mean, rng: &rng)
            }[0].weights
        }
        XCTAssertEqual(try run(5, 0), try run(5, 0))
        XCTAssertNotEqual(try run(5, 0), try run(6, 0))
        // p(class 1) = 1 − p(class 0): the weights flip sign.
        for (a, b) in zip(try run(5, 0), try run(5, 1)) { XCTAssertEqual(a, -b, accuracy: 1e-9) }
    }
}
