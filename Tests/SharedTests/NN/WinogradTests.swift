import Foundation
import Shared
import XCTest

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) against the direct (im2col) convolution: forward, input
/// gradient and kernel gradient, in float64 (exact up to rounding) and float32 (within its precision).
final class WinogradTests: XCTestCase {
    func compare<S: Real>(_ type: S.Type, h: Int, w: Int, cin: Int, cout: Int, batch: Int, tile: Int) -> [String: Double] {
        var rng = SeededGenerator(seed: UInt64(h * 1000 + cin))
        let g = ConvGeometry(h: h, w: w, cin: cin, cout: cout, kh: 3, kw: 3, stride: 1)
        let x = (0..<batch * g.inSize).map { _ in S(rng.normal()) }
        let k = (0..<9 * cin * cout).map { _ in S(rng.normal() * 0.2) }
        let b = (0..<cout).map { _ in S(rng.normal() * 0.1) }
        let dy = (0..<batch * g.outSize).map { _ in S(rng.normal()) }
        let ws = Buffer<S>(count: max(winogradWorkspaceCount(g, batch: batch, tile: tile), convWorkspaceCount(g, batch, MemoryLayout<S>.stride)))
        func rel(_ a: [S], _ r: [S]) -> Double {
            var d = 0.0, m = 0.0
            for i in 0..<a.count { d = max(d, abs(Double(a[i] - r[i]))); m = max(m, abs(Double(r[i]))) }
            return d / m
        }
        var y1 = [S](repeating: 0, count: batch * g.outSize), y2 = y1
        convForward(x, k, b, &y1, batch: batch, g, relu: true, workspace: ws.pointer)
        winogradForward(x, k, b, &y2, batch: batch, g, relu: true, workspace: ws.pointer, tile: tile)
        var dx1 = [S](repeating: 0, count: batch * g.inSize), dx2 = dx1
        convBackwardData(dy, k, &dx1, batch: batch, g, workspace: ws.pointer)
        winogradBackwardData(dy, k, &dx2, batch: batch, g, workspace: ws.pointer, tile: tile)
        var dw1 = [S](repeating: 0, count: 9 * cin * cout), dw2 = dw1, db1 = [S](repeating: 0, count: cout), db2 = db1
        convBackwardWeights(x, dy, &dw1, &db1, batch: batch, g, workspace: ws.pointer)
        winogradBackwardWeights(x, dy, &dw2, &db2, batch: batch, g, workspace: ws.pointer, tile: tile)
        return ["forward": rel(y2, y1), "input gradient": rel(dx2, dx1), "kernel gradient": rel(dw2, dw1), "bias gradient": rel(db2, db1)]
    }

    func testMatchesDirectConvolution() {
        // Shapes of VGGish's layers (small batches), non-square channel counts that are not
        // multiples of the C kernels' channel block, and several blocks of tiles (the last: 270
        // tiles at F(4×4) in two blocks of 135, 1080 at F(2×2) in four of 270).
        let cases = [(8, 6, 8, 5, 3), (48, 32, 16, 24, 2), (12, 8, 64, 32, 5), (6, 4, 32, 48, 40), (8, 8, 40, 37, 30),
                     (24, 16, 33, 70, 3), (12, 8, 256, 200, 45)]
        for (h, w, cin, cout, batch) in cases {
            for tile in [2, 4] where h % tile == 0 && w % tile == 0 {
                for (k, e) in compare(Double.self, h: h, w: w, cin: cin, cout: cout, batch: batch, tile: tile) {
                    XCTAssertLessThan(e, 1e-12, "float64 F(\(tile)×\(tile)) \(h)×\(w)×\(cin)→\(cout) \(k)")
                }
                // F(4×4)'s transforms have entries up to 8 and 1/24: its float32 error is larger.
                let bound = tile == 2 ? 2e-5 : 1e-4
                for (k, e) in compare(Float.self, h: h, w: w, cin: cin, cout: cout, batch: batch, tile: tile) {
                    XCTAssertLessThan(e, bound, "float32 F(\(tile)×\(tile)) \(h)×\(w)×\(cin)→\(cout) \(k)")
                }
            }
        }
    }

    func testDefaultTile() {
        // F(4×4) wherever height and width divide by 4: every VGGish map after conv1.
        for (h, w) in [(48, 32), (24, 16), (12, 8)] {
            XCTAssertEqual(winogradTile(ConvGeometry(h: h, w: w, cin: 64, cout: 64, kh: 3, kw: 3, stride: 1)), 4)
        }
        XCTAssertEqual(winogradTile(ConvGeometry(h: 6, w: 4, cin: 64, cout: 64, kh: 3, kw: 3, stride: 1)), 2)
    }
}
