import Foundation
import Shared
import XCTest

/// Winograd F(2×2, 3×3) against the direct (im2col) convolution: forward, input gradient and
/// kernel gradient, in float64 (exact up to rounding) and float32 (within its precision).
final class WinogradTests: XCTestCase {
    func compare<S: Real>(_ type: S.Type, h: Int, w: Int, cin: Int, cout: Int, batch: Int) -> [String: Double] {
        var rng = SeededGenerator(seed: UInt64(h * 1000 + cin))
        let g = ConvGeometry(h: h, w: w, cin: cin, cout: cout, kh: 3, kw: 3, stride: 1)
        let x = (0..<batch * g.inSize).map { _ in S(rng.normal()) }
        let k = (0..<9 * cin * cout).map { _ in S(rng.normal() * 0.2) }
        let b = (0..<cout).map { _ in S(rng.normal() * 0.1) }
        let dy = (0..<batch * g.outSize).map { _ in S(rng.normal()) }
        let ws = Buffer<S>(count: max(winogradWorkspaceCount(g, batch: batch), convWorkspaceCount(g, batch, MemoryLayout<S>.stride)))
        func rel(_ a: [S], _ r: [S]) -> Double {
            var d = 0.0, m = 0.0
            for i in 0..<a.count { d = max(d, abs(Double(a[i] - r[i]))); m = max(m, abs(Double(r[i]))) }
            return d / m
        }
        var y1 = [S](repeating: 0, count: batch * g.outSize), y2 = y1
        convForward(x, k, b, &y1, batch: batch, g, relu: true, workspace: ws.pointer)
        winogradForward(x, k, b, &y2, batch: batch, g, relu: true, workspace: ws.pointer)
        var dx1 = [S](repeating: 0, count: batch * g.inSize), dx2 = dx1
        convBackwardData(dy, k, &dx1, batch: batch, g, workspace: ws.pointer)
        winogradBackwardData(dy, k, &dx2, batch: batch, g, workspace: ws.pointer)
        var dw1 = [S](repeating: 0, count: 9 * cin * cout), dw2 = dw1, db1 = [S](repeating: 0, count: cout), db2 = db1
        convBackwardWeights(x, dy, &dw1, &db1, batch: batch, g, workspace: ws.pointer)
        winogradBackwardWeights(x, dy, &dw2, &db2, batch: batch, g, workspace: ws.pointer)
        return ["forward": rel(y2, y1), "input gradient": rel(dx2, dx1), "kernel gradient": rel(dw2, dw1), "bias gradient": rel(db2, db1)]
    }

    func testMatchesDirectConvolution() {
        // Shapes of VGGish's layers (small batches) and a multi-block case.
        let cases = [(8, 6, 8, 5, 3), (48, 32, 16, 24, 2), (12, 8, 64, 32, 5), (6, 4, 32, 48, 40)]
        for (h, w, cin, cout, batch) in cases {
            for (k, e) in compare(Double.self, h: h, w: w, cin: cin, cout: cout, batch: batch) {
                XCTAssertLessThan(e, 1e-12, "float64 \(h)×\(w)×\(cin)→\(cout) \(k)")
            }
            for (k, e) in compare(Float.self, h: h, w: w, cin: cin, cout: cout, batch: batch) {
                XCTAssertLessThan(e, 2e-5, "float32 \(h)×\(w)×\(cin)→\(cout) \(k)")
            }
        }
    }
}
