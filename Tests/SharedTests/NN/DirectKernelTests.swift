import Foundation
import Shared
import XCTest

/// The C direct kernels (direct.inc) against plain loops: VGGish's single-channel first
/// convolution (forward with bias and ReLU, kernel gradient) and the 2×2 max pool with the
/// ReLU before it, in float64 and float32, on shapes with borders, odd channel counts and
/// several samples.
final class DirectKernelTests: XCTestCase {
    func testSingleChannelConvolutionMatchesLoops() {
        for (h, w, cout, batch) in [(96, 64, 64, 2), (5, 7, 13, 3), (1, 1, 4, 1)] {
            check(Double.self, h: h, w: w, cout: cout, batch: batch, bound: 1e-12)
            check(Float.self, h: h, w: w, cout: cout, batch: batch, bound: 1e-5)
        }
    }

    func check<S: Real>(_ type: S.Type, h: Int, w: Int, cout: Int, batch: Int, bound: Double) {
        var rng = SeededGenerator(seed: UInt64(h * 31 + cout))
        let g = ConvGeometry(h: h, w: w, cin: 1, cout: cout, kh: 3, kw: 3, stride: 1)
        XCTAssertTrue(g.isSingleChannel3x3)
        let x = (0..<batch * h * w).map { _ in S(rng.normal()) }
        let k = (0..<9 * cout).map { _ in S(rng.normal() * 0.3) }
        let b = (0..<cout).map { _ in S(rng.normal() * 0.1) }
        let dy = (0..<batch * g.outSize).map { _ in S(rng.normal()) }
        func input(_ n: Int, _ i: Int, _ j: Int) -> Double { i >= 0 && i < h && j >= 0 && j < w ? Double(x[(n * h + i) * w + j]) : 0 }
        var yRef = [Double](repeating: 0, count: batch * g.outSize), dwRef = [Double](repeating: 0, count: 9 * cout)
        for n in 0..<batch {
            for i in 0..<h {
                for j in 0..<w {
                    for c in 0..<cout {
                        var s = Double(b[c])
                        for a in 0..<3 { for e in 0..<3 { s += input(n, i - 1 + a, j - 1 + e) * Double(k[(a * 3 + e) * cout + c]) } }
                        yRef[((n * h + i) * w + j) * cout + c] = max(0, s)
                        let d = Double(dy[((n * h + i) * w + j) * cout + c])
                        for a in 0..<3 { for e in 0..<3 { dwRef[(a * 3 + e) * cout + c] += input(n, i - 1 + a, j - 1 + e) * d } }
                    }
                }
            }
        }
        let ws = Buffer<S>(count: convWorkspaceCount(g, batch, MemoryLayout<S>.stride))
        var y = [S](repeating: 0, count: batch * g.outSize)
        convForward(x, k, b, &y, batch: batch, g, relu: true, workspace: ws.pointer)
        var dw = [S](repeating: 7, count: 9 * cout), db = [S](repeating: 0, count: cout)
        convBackwardWeights(x, dy, &dw, &db, batch: batch, g, workspace: ws.pointer)
        XCTAssertLessThan(relativeError(y.map(Double.init), yRef), bound, "\(S.self) forward \(h)×\(w)→\(cout)")
        XCTAssertLessThan(relativeError(dw.map(Double.init), dwRef), bound, "\(S.self) kernel gradient \(h)×\(w)→\(cout)")
    }

    func testMaxPoolAndItsReluBackwardFromIndicesMatchLoops() {
        let (batch, h, w, c) = (3, 6, 4, 19)
        var rng = SeededGenerator(seed: 5)
        // Ties on purpose (the first maximum in window order takes the gradient) and non-positive maxima.
        let x = (0..<batch * h * w * c).map { _ in Float((rng.normal() * 2).rounded()) }
        let dy = (0..<batch * h * w * c / 4).map { _ in Float(rng.normal()) }
        var y = [Float](repeating: 0, count: dy.count), dx = [Float](repeating: 9, count: x.count)
        var plain = y, indices = [UInt8](repeating: 9, count: dy.count)
        maxPool2Forward(x, &plain, batch: batch, h: h, w: w, c: c)
        maxPool2Forward(x, &y, indices: &indices, batch: batch, h: h, w: w, c: c, relu: true)
        maxPool2Backward(dy, indices: indices, &dx, batch: batch, h: h, w: w, c: c)
        XCTAssertEqual(plain, y, "recording indices does not change the pool")
        var yRef = [Float](repeating: 0, count: y.count), dxRef = [Float](repeating: 0, count: x.count)
        for n in 0..<batch {
            for i in 0..<(h / 2) {
                for j in 0..<(w / 2) {
                    for ch in 0..<c {
                        let idx = [(0, 0), (0, 1), (1, 0), (1, 1)].map { ((n * h + 2 * i + $0.0) * w + 2 * j + $0.1) * c + ch }
                        let m = idx.map { x[$0] }.max()!
                        let o = ((n * (h / 2) + i) * (w / 2) + j) * c + ch
                        yRef[o] = m
                        if m > 0 { dxRef[idx.first { x[$0] == m }!] = dy[o] }
                    }
                }
            }
        }
        XCTAssertEqual(y, yRef)
        XCTAssertEqual(dx, dxRef)
    }

    func relativeError(_ a: [Double], _ r: [Double]) -> Double {
        var d = 0.0, m = 0.0
        for i in 0..<a.count { d = max(d, abs(a[i] - r[i])); m = max(m, abs(r[i])) }
        return d / max(m, 1e-300)
    }
}
