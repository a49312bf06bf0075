import Foundation
import Shared
import XCTest

/// GDS on hand-made cases whose answer is worked out in docs/FEATURES.md, and against a literal,
/// loop-by-loop transcription of the MATLAB definition on random data.
final class GaussianDataSelectionTests: XCTestCase {
    /// A segment with some structure (not symmetric, so its G has variance).
    func base(_ n: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Float(g.normal() + 0.3 * g.uniform()) }
    }

    /// k affine copies (positive scale) of one segment plus one unrelated segment.
    /// Copies have identical G up to a factor, so r = 1 among them; with r' the outlier's correlation,
    /// C = k + r' for copies and 1 + k r' for the outlier, and the z-scores are exactly
    /// 1/√(k+1) for copies and −k/√(k+1) for the outlier, whatever r' is (docs/FEATURES.md).
    func testAffineCopiesAndOneOutlierScoreAsWorkedOut() {
        let n = 600
        let a = base(n, seed: 1), outlier = base(n, seed: 99)
        for k in [2, 3, 5] {
            var segs: [Float] = []
            for c in 0..<k { segs += a.map { $0 * Float(1 + c) + Float(c) * 0.5 } }
            segs += outlier
            let r = GaussianDataSelection.select(segs, count: k + 1, length: n, threshold: -1)
            let copy = 1 / Double(k + 1).squareRoot(), odd = -Double(k) / Double(k + 1).squareRoot()
            for c in 0..<k { XCTAssertEqual(r.scores[c]!, copy, accuracy: 1e-6, "k = \(k)") }
            XCTAssertEqual(r.scores[k]!, odd, accuracy: 1e-6, "k = \(k)")
            // −2/√3 = −1.155, −3/2, −5/√6 = −2.04: all below −1, so the outlier goes.
            XCTAssertEqual(r.kept, Array(repeating: true, count: k) + [false])
            XCTAssertEqual(r.removed, 1)
        }
        // With T = −1.6 the outlier of k = 3 (score −1.5) stays, that of k = 5 (−2.04) does not.
        var segs3: [Float] = []
        for c in 0..<3 { segs3 += a.map { $0 * Float(2 + c) } }
        segs3 += outlier
        XCTAssertEqual(GaussianDataSelection.select(segs3, count: 4, length: n, threshold: -1.6).kept, [true, true, true, true])
    }

    func testOneOrTwoSegmentsAreAlwaysKept() {
        let n = 300
        let one = GaussianDataSelection.select(base(n, seed: 3), count: 1, length: n, threshold: 5)
        XCTAssertEqual(one.scores, [0])
        XCTAssertEqual(one.kept, [true])
        let two = GaussianDataSelection.select(base(n, seed: 3) + base(n, seed: 4), count: 2, length: n, threshold: 5)
        XCTAssertEqual(two.scores, [0, 0])
        XCTAssertEqual(two.kept, [true, true])
    }

    func testConstantSegmentsAreDroppedAndTheRestScoredAmongThemselves() {
        let n = 400
        let a = base(n, seed: 5), outlier = base(n, seed: 6)
        let silent = [Float](repeating: log(0.001), count: n)
        // silent, copy, copy, copy, outlier, silent → the non-constant four are the k = 3 case.
        let segs = silent + a + a.map { $0 * 3 } + a.map { $0 + 1 } + outlier + silent
        let r = GaussianDataSelection.select(segs, count: 6, length: n, threshold: -1)
        XCTAssertNil(r.scores[0])
        XCTAssertNil(r.scores[5])
        XCTAssertEqual(r.scores[1]!, 0.5, accuracy: 1e-6)
        XCTAssertEqual(r.scores[4]!, -1.5, accuracy: 1e-6)
        XCTAssertEqual(r.kept, [false, true, true, true, false, false])
        XCTAssertEqual(r.before, 6)
        XCTAssertEqual(r.after, 3)
        // One constant + two others: two scorable segments, both kept.
        let r2 = GaussianDataSelection.select(silent + a + outlier, count: 3, length: n, threshold: -1)
        XCTAssertEqual(r2.kept, [false, true, true])
        // A two-valued segment symmetric about its mean has a constant G: treated like a constant one.
        let twoValued = (0..<n).map { Float($0 % 2 == 0 ? 1 : -1) }
        let r3 = GaussianDataSelection.select(twoValued + a + outlier + base(n, seed: 8), count: 4, length: n, threshold: -1)
        XCTAssertNil(r3.scores[0])
    }

    func testIdenticalSegmentsAllScoreZero() {
        let n = 200
        let a = base(n, seed: 11)
        let r = GaussianDataSelection.select(a + a + a + a, count: 4, length: n, threshold: -1)
        XCTAssertEqual(r.scores.map { $0! }, [0, 0, 0, 0])
        XCTAssertEqual(r.kept, [true, true, true, true])
    }

    /// MATLAB, written out literally: std with N−1, normpdf, corrcoef by its definition, sum, zscore.
    func matlabReference(_ segs: [[Double]]) -> [Double] {
        func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
        func std(_ x: [Double]) -> Double {
            let m = mean(x)
            return (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count - 1)).squareRoot()
        }
        let g = segs.map { s -> [Double] in
            let mu = mean(s), sigma = std(s)
            return s.map { exp(-0.5 * pow(($0 - mu) / sigma, 2)) / (sigma * (2 * Double.pi).squareRoot()) }
        }
        let p = g.count
        var c = [Double](repeating: 0, count: p)
        for i in 0..<p {
            for j in 0..<p {
                let mi = mean(g[i]), mj = mean(g[j])
                var sxy = 0.0, sxx = 0.0, syy = 0.0
                for k in 0..<g[i].count {
                    sxy += (g[i][k] - mi) * (g[j][k] - mj)
                    sxx += (g[i][k] - mi) * (g[i][k] - mi)
                    syy += (g[j][k] - mj) * (g[j][k] - mj)
                }
                c[j] += sxy / (sxx * syy).squareRoot()
            }
        }
        let m = mean(c), sd = std(c)
        return c.map { ($0 - m) / sd }
    }

    func testMatchesALiteralMATLABTranscriptionOnRandomFiles() {
        var rng = SeededGenerator(seed: 2024)
        var dropped = 0, total = 0
        for trial in 0..<12 {
            let p = 3 + trial % 9, n = 96 * 8
            // Segments of mixed character: different spreads, skews and a few loud bursts.
            var segs: [[Double]] = []
            for _ in 0..<p {
                let spread = 0.5 + 2 * rng.uniform(), skew = rng.uniform()
                segs.append((0..<n).map { _ in
                    let x = rng.normal() * spread
                    return x + skew * x * x + (rng.uniform() < 0.02 ? 8 : 0)
                })
            }
            let flat = segs.flatMap { $0.map { Float($0) } }
            let ref = matlabReference(segs.map { $0.map { Double(Float($0)) } })
            let r = GaussianDataSelection.select(flat, count: p, length: n, threshold: -1)
            for i in 0..<p {
                XCTAssertEqual(r.scores[i]!, ref[i], accuracy: 1e-9, "trial \(trial), segment \(i)")
                XCTAssertEqual(r.kept[i], ref[i] > -1)
            }
            dropped += r.removed
            total += p
        }
        XCTAssertGreaterThan(dropped, 0)
        XCTAssertLessThan(dropped, total / 2)
    }
}
