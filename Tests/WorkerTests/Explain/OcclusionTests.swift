import Foundation
import Shared
import Worker
import XCTest

/// Occlusion sensitivity against a brute-force computation: every window occluded and run on its
/// own (batch of one), each cell's drops averaged by explicit loops.
final class OcclusionTests: XCTestCase {
    func testWindowPositionsCoverEveryCell() {
        XCTAssertEqual(Occlusion.positions(length: 96, window: 16, stride: 8), Array(stride(from: 0, through: 80, by: 8)))
        XCTAssertEqual(Occlusion.positions(length: 64, window: 16, stride: 8).count, 7)
        XCTAssertEqual(Occlusion.positions(length: 10, window: 4, stride: 4), [0, 4, 6])
        XCTAssertEqual(Occlusion.positions(length: 5, window: 5, stride: 3), [0])
    }

    func bruteForce(_ model: PatchClassifier, _ patch: [Float], target: Int, s: Occlusion.Settings, fill: Float) throws -> (Double, [Double]) {
        let F = model.frames, B = model.bands
        func prob(_ x: [Float]) throws -> Double {
            var out = [Double](repeating: 0, count: model.classes)
            try x.withUnsafeBufferPointer { xb in try out.withUnsafeMutableBufferPointer { try model.probabilities(xb.baseAddress!, count: 1, into: $0.baseAddress!) } }
            return out[target]
        }
        let base = try prob(patch)
        var sum = [Double](repeating: 0, count: F * B), n = [Double](repeating: 0, count: F * B)
        var r0 = 0
        while true {
            var c0 = 0
            while true {
                var x = patch
                for r in r0..<(r0 + s.windowFrames) { for c in c0..<(c0 + s.windowBands) { x[r * B + c] = fill } }
                let drop = base - (try prob(x))
                for r in r0..<(r0 + s.windowFrames) { for c in c0..<(c0 + s.windowBands) { sum[r * B + c] += drop; n[r * B + c] += 1 } }
                if c0 + s.windowBands >= B { break }
                c0 = min(c0 + s.strideBands, B - s.windowBands)
            }
            if r0 + s.windowFrames >= F { break }
            r0 = min(r0 + s.strideFrames, F - s.windowFrames)
        }
        return (base, (0..<(F * B)).map { sum[$0] / n[$0] })
    }

    /// On a small fusion-v1 with random weights: the batched method equals the brute force.
    func testMatchesBruteForceOnNetwork() throws {
        let net = try smallNetwork()
        let batched = NetworkClassifier(net, maxBatch: 32)
        let patch = randomPatch(96 * 64, seed: 21)
        var s = Occlusion.Settings()
        s.windowFrames = 24; s.windowBands = 16; s.strideFrames = 20; s.strideBands = 12   // uneven: the last windows are flush
        let target = 2
        let r = try patch.withUnsafeBufferPointer {
            try Occlusion.explain(batched, patches: $0.baseAddress!, count: 1, target: target, settings: s, baseline: .mean)
        }[0]
        let fill = Float(patch.reduce(0.0) { $0 + Double($1) } / Double(patch.count))
        let single = NetworkClassifier(try smallNetwork(), maxBatch: 1)
        let (base, expected) = try bruteForce(single, patch, target: target, s: s, fill: fill)
        XCTAssertEqual(r.probability, base, accuracy: 1e-5)
        var worst = 0.0, scale = 0.0
        for i in 0..<expected.count {
            worst = max(worst, abs(Double(r.map[i]) - expected[i]))
            scale = max(scale, abs(expected[i]))
        }
        XCTAssertGreaterThan(scale, 1e-4, "occlusion should change this network's output")
        XCTAssertLessThan(worst, 1e-5 + 1e-3 * scale, "batched vs brute force")
    }

    /// On a model that reads one known tile: only windows touching it change the output, and the
    /// drop is the hidden share of the tile times its weight (exact arithmetic, several patches).
    func testKnownRegionModel() throws {
        let regions = Regions.grid(frames: 96, bands: 64, time: 8, freq: 4)
        var w = [Double](repeating: 0, count: 32)
        w[10] = 0.2   // tile 10: frames 24..<36, bands 32..<48
        let model = RegionScorer(regions: regions, weights: w, maxBatch: 50)
        var patch = [Float](repeating: -5, count: 96 * 64)
        for i in 0..<patch.count where regions.labels[i] == 10 { patch[i] = -1 }
        let fill: Float = -2
        let two = patch + patch
        let s = Occlusion.Settings()
        let rs = try two.withUnsafeBufferPointer {
            try Occlusion.explain(model, patches: $0.baseAddress!, count: 2, target: 0, settings: s, baseline: .value(fill))
        }
        let (_, expected) = try bruteForce(model, patch, target: 0, s: s, fill: fill)
        for r in rs {
            for i in 0..<expected.count { XCTAssertEqual(Double(r.map[i]), expected[i], accuracy: 1e-7) }   // the map is Float
            // A cell far from tile 10 is never under a window that touches it.
            XCTAssertEqual(r.map[80 * 64 + 2], 0)
            XCTAssertGreaterThan(r.map[30 * 64 + 40], 0)
        }
    }
}
