import Foundation
import Shared
import Worker
import XCTest

/// PCA, silhouette and t-SNE against cases whose answer is known.
final class EmbeddingTests: XCTestCase {
    /// Six points ±3u₁, ±2u₂, ±u₃ around (5, −1, 2), with u₁ = (1, 2, 2)/3, u₂ = (2, 1, −2)/3,
    /// u₃ = (2, −2, 1)/3 orthonormal: the sample covariance is (18 u₁u₁ᵀ + 8 u₂u₂ᵀ + 2 u₃u₃ᵀ)/5,
    /// so the principal axes are exactly u₁, u₂ (variances 3.6, 1.6 of a total 5.6).
    func testPCARecoversKnownAxes() throws {
        let u: [[Double]] = [[1, 2, 2], [2, 1, -2], [2, -2, 1]].map { $0.map { $0 / 3 } }
        let centre: [Double] = [5, -1, 2]
        var x: [[Double]] = []
        for (k, a) in [3.0, 2, 1].enumerated() {
            for s in [1.0, -1] { x.append((0..<3).map { centre[$0] + s * a * u[k][$0] }) }
        }
        let pca = try PCA.fit(x, components: 2)
        for j in 0..<3 { XCTAssertEqual(pca.mean[j], centre[j], accuracy: 1e-12) }
        for k in 0..<2 {
            let dot = zip(pca.components[k], u[k]).reduce(0) { $0 + $1.0 * $1.1 }
            XCTAssertEqual(abs(dot), 1, accuracy: 1e-12, "axis \(k)")
        }
        XCTAssertEqual(pca.variances[0], 3.6, accuracy: 1e-12)
        XCTAssertEqual(pca.variances[1], 1.6, accuracy: 1e-12)
        XCTAssertEqual(pca.totalVariance, 5.6, accuracy: 1e-12)
        XCTAssertEqual(pca.explainedRatio[0], 3.6 / 5.6, accuracy: 1e-12)
        let p = pca.project(x[0])
        XCTAssertEqual(abs(p[0]), 3, accuracy: 1e-12)
        XCTAssertEqual(p[1], 0, accuracy: 1e-12)
        // The sign rule: each axis's largest-magnitude entry is positive.
        let axis = try PCA.fit([[0, 0], [1, -3], [-1, 3]], components: 1).components[0]
        XCTAssertEqual(axis[0], -1 / 10.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(axis[1], 3 / 10.0.squareRoot(), accuracy: 1e-12)
    }

    /// Clusters {0, 1} and {4, 6} on a line:
    ///   0: a = 1, b = (4 + 6)/2 = 5,  s = 4/5
    ///   1: a = 1, b = (3 + 5)/2 = 4,  s = 3/4
    ///   4: a = 2, b = (4 + 3)/2 = 3.5, s = 1.5/3.5 = 3/7
    ///   6: a = 2, b = (6 + 5)/2 = 5.5, s = 3.5/5.5 = 7/11
    func testSilhouetteOfHandMadeClusters() throws {
        let r = try XCTUnwrap(Silhouette.compute([[0], [1], [4], [6]], labels: [0, 0, 1, 1]))
        let s: [Double] = [0.8, 0.75, 3.0 / 7, 7.0 / 11]
        for (a, b) in zip(r.points, s) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual(r.mean, s.reduce(0, +) / 4, accuracy: 1e-12)
        XCTAssertEqual(r.perCluster[0]!, 0.775, accuracy: 1e-12)
        XCTAssertEqual(r.perCluster[1]!, (3.0 / 7 + 7.0 / 11) / 2, accuracy: 1e-12)
        // A point alone in its cluster scores 0; b is the nearest other cluster (2-D distances).
        let single = try XCTUnwrap(Silhouette.compute([[0, 0], [0, 1], [10, 0]], labels: [5, 5, 9]))
        XCTAssertEqual(single.points[0], 0.9, accuracy: 1e-12)
        XCTAssertEqual(single.points[1], (101.0.squareRoot() - 1) / 101.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(single.points[2], 0)
        // One cluster: undefined.
        XCTAssertNil(Silhouette.compute([[0], [1]], labels: [3, 3]))
        // Mixed-up labels score below zero.
        XCTAssertLessThan(try XCTUnwrap(Silhouette.compute([[0], [1], [4], [6]], labels: [0, 1, 0, 1])).mean, 0)
    }

    func testTSNECalibratesPerplexityAndSeparatesClusters() throws {
        var rng = SeededGenerator(seed: 4)
        // Conditional distributions: every row sums to 1 and has entropy ln(perplexity).
        let n = 30
        let pts = (0..<n).map { _ in (0..<5).map { _ in rng.normal() } }
        var d2 = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { d2[i * n + j] = zip(pts[i], pts[j]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } } }
        let p = TSNE.conditionalProbabilities(squaredDistances: d2, n: n, perplexity: 5)
        for i in 0..<n {
            let row = p[(i * n) ..< ((i + 1) * n)]
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-12)
            XCTAssertEqual(p[i * n + i], 0)
            let h = -row.filter { $0 > 0 }.reduce(0) { $0 + $1 * log($1) }
            XCTAssertEqual(h, log(5.0), accuracy: 1e-8)
        }
        // Three clusters 20 apart in 10-D: the 2-D map keeps them apart.
        var x: [[Double]] = [], labels: [Int] = []
        for i in 0..<60 {
            let c = i % 3
            x.append((0..<10).map { j in (j == c ? 20 : 0) + rng.normal() })
            labels.append(c)
        }
        let (y, kl) = try TSNE(perplexity: 10, iterations: 500).embed(x)
        XCTAssertEqual(y.count, 60)
        XCTAssertTrue(kl.isFinite && kl >= 0)
        // Kept apart: nearly every point lies nearer its own cluster's centre in the map than any
        // other centre, and the silhouette shows strong structure (> 0.5). Exact t-SNE may leave a
        // single point trapped in a neighbouring cluster after early exaggeration, and which layout
        // comes out depends on rounding (the PCA start goes through LAPACK, whose result varies with
        // OpenBLAS's thread count), so the bounds allow one such point and no more.
        let centres = (0..<3).map { c -> (Double, Double) in
            let members = (0..<60).filter { labels[$0] == c }
            return (members.map { y[$0][0] }.reduce(0, +) / Double(members.count), members.map { y[$0][1] }.reduce(0, +) / Double(members.count))
        }
        let misplaced = (0..<60).filter { i in
            let nearest = (0..<3).min { hypot(y[i][0] - centres[$0].0, y[i][1] - centres[$0].1) < hypot(y[i][0] - centres[$1].0, y[i][1] - centres[$1].1) }!
            return nearest != labels[i]
        }
        XCTAssertLessThanOrEqual(misplaced.count, 1, "points nearer another cluster's centre: \(misplaced)")
        let s = try XCTUnwrap(Silhouette.compute(y, labels: labels))
        XCTAssertGreaterThan(s.mean, 0.5)
    }
}
