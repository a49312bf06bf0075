import Foundation
import Shared
import TestSupport
import Worker
import XCTest

/// Grad-CAM: the formula on a hand-worked case, the resize, the batched method on a model whose
/// gradient is known, and the network's Grad-CAM gradient against PyTorch float64
/// (shared/golden/fusion_v1.safetensors, `gradcam/dlogit2_dtapC`).
final class GradCAMTests: XCTestCase {
    /// A 2 × 1 map with 2 channels, worked by hand:
    ///   A[0] = (1, 2), A[1] = (3, −1);  dY/dA[0] = (0.5, −1), dY/dA[1] = (1.5, 0)
    ///   α = mean over positions = (1, −0.5)
    ///   position 0: 1·1 − 0.5·2 = 0 → 0;  position 1: 1·3 − 0.5·(−1) = 3.5
    /// and with the opposite gradient, ReLU clips both (−0 → 0, −3.5 → 0).
    func testHandWorkedMap() {
        let a: [Float] = [1, 2, 3, -1]
        let g: [Float] = [0.5, -1, 1.5, 0]
        XCTAssertEqual(GradCAM.map(activation: a, gradient: g, h: 2, w: 1, c: 2), [0, 3.5])
        XCTAssertEqual(GradCAM.map(activation: a, gradient: g.map { -$0 }, h: 2, w: 1, c: 2), [0, 0])
        // 1 × 2 positions, 3 channels: α = (1, 0, −2); values 1·2 + 0 − 2·0.5 = 1 and 1·4 + 0 − 2·1 = 2.
        let a3: [Float] = [2, 7, 0.5, 4, -3, 1]
        let g3: [Float] = [2, 1, -4, 0, -1, 0]
        XCTAssertEqual(GradCAM.map(activation: a3, gradient: g3, h: 1, w: 2, c: 3), [1, 2])
    }

    /// Bilinear resize with aligned cell centres: source row coordinate (i + ½)·h/H − ½, clamped.
    func testUpsampleHandWorked() {
        // 2 × 1 → 4 × 2: rows sample at −0.25, 0.25, 0.75, 1.25 → 0, 0.25, 0.75, 1 of the way.
        let up = GradCAM.upsample([0, 1], h: 2, w: 1, frames: 4, bands: 2)
        XCTAssertEqual(up, [0, 0, 0.25, 0.25, 0.75, 0.75, 1, 1])
        // 1 × 2 → 1 × 4 along bands: [2, 6] → 2, 3, 5, 6.
        XCTAssertEqual(GradCAM.upsample([2, 6], h: 1, w: 2, frames: 1, bands: 4), [2, 3, 5, 6])
        // A constant map stays constant.
        XCTAssertTrue(GradCAM.upsample([Float](repeating: 0.7, count: 24), h: 6, w: 4, frames: 96, bands: 64).allSatisfy { abs($0 - 0.7) < 1e-6 })
    }

    /// The batched method (several batches) against the formula evaluated in the test from the
    /// model's known weights: α = mean_ij W[target], map = ReLU(Σ α A), for every class.
    func testBatchedMethodOnLinearModel() throws {
        let model = LinearHead(classes: 3, maxBatch: 2)
        let count = 5, per = model.frames * model.bands
        // Cells of different levels (−4…4), so that Σ α A changes sign across the map.
        var rng = SeededGenerator(seed: 3)
        let levels = (0..<(count * 24)).map { _ in -4 + 8 * rng.uniform() }
        var x = [Float](repeating: 0, count: count * per)
        for p in 0..<count {
            for f in 0..<96 { for b in 0..<64 { x[p * per + f * 64 + b] = Float(levels[p * 24 + (f / 16) * 4 + b / 16] + 0.3 * rng.normal()) } }
        }
        var positive = 0, clipped = 0
        for target in 0..<3 {
            let r = try x.withUnsafeBufferPointer { try GradCAM.explain(model, patches: $0.baseAddress!, count: count, target: target, settings: .init()) }
            XCTAssertEqual(r.h, 6)
            XCTAssertEqual(r.w, 4)
            XCTAssertEqual(r.maps.count, count * per)
            let wt = model.weights[target]
            let alpha = (0..<2).map { k in (0..<24).reduce(0.0) { $0 + wt[$1 * 2 + k] } / 24 }
            for p in 0..<count {
                let a = x.withUnsafeBufferPointer { model.features($0.baseAddress! + p * per) }
                for cell in 0..<24 {
                    let raw = alpha[0] * a[cell * 2] + alpha[1] * a[cell * 2 + 1]
                    XCTAssertEqual(Double(r.coarse[p * 24 + cell]), max(0, raw), accuracy: 1e-4 * max(1, abs(raw)))
                    if raw > 0 { positive += 1 } else { clipped += 1 }
                }
                // The patch map is the coarse map resized.
                let coarse = Array(r.coarse[(p * 24)..<((p + 1) * 24)])
                XCTAssertEqual(Array(r.maps[(p * per)..<((p + 1) * per)]), GradCAM.upsample(coarse, h: 6, w: 4, frames: 96, bands: 64))
            }
        }
        XCTAssertGreaterThan(positive, 20, "the case should not be all clipped")
        XCTAssertGreaterThan(clipped, 20, "nor without any clipping")
    }

    // MARK: - Golden

    func goldenNetwork<S: Real>(_ golden: SafeTensors, as: S.Type) throws -> Network<S> {
        let net = try Network<S>(config: ModelConfig(architecture: .fusionV1, classes: 4))
        for spec in net.layout.specs {
            let codes = try golden.require("param/" + spec.name).doubles()
            let scale = try golden.require("scale/" + spec.name).doubles()[0]
            let p = net.params.value(spec.name)
            for i in 0..<spec.count { p[i] = S(codes[i] * scale) }
        }
        return net
    }

    func relErr(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        var d = 0.0, m = 0.0
        for i in 0..<a.count { d = max(d, abs(a[i] - b[i])); m = max(m, abs(b[i])) }
        return d / m
    }

    /// d(Σ_b logit[b, 2]) / d tapC with training-mode batch norm, through the classifier the
    /// explainer uses, in float64 (1e-9) and float32 (README tolerance 1e-3); and Grad-CAM maps from
    /// our activation and gradient against the maps from the golden activation and gradient.
    func testNetworkGradientMatchesPyTorchGolden() throws {
        let golden = try SafeTensors.read(path: try TestEnv.shared("golden/fusion_v1.safetensors"))
        let ref = try golden.require("gradcam/dlogit2_dtapC").doubles()
        let refAct = try golden.require("act_train/tapC").doubles()
        let x = try golden.require("input").doubles()

        let net64 = try goldenNetwork(golden, as: Double.self)
        let c64 = NetworkClassifier(net64, maxBatch: 4)
        c64.bn = .batch
        let r64 = try x.withUnsafeBufferPointer { try c64.tapGradients($0.baseAddress!, count: 4, targets: [2, 2, 2, 2], layer: .vggishC) }
        XCTAssertEqual([r64.h, r64.w, r64.c], [6, 4, 512])
        let e64 = relErr(r64.gradients, ref)
        XCTAssertLessThan(e64, 1e-9, "float64 Grad-CAM gradient")
        XCTAssertLessThan(relErr(r64.activations, refAct), 1e-9, "float64 tap C")

        // Maps: ours (from our activation and gradient) against the golden's (from its own).
        func maps(_ a: [Double], _ g: [Double]) -> [Double] {
            let af = a.map { Float($0) }, gf = g.map { Float($0) }
            return (0..<4).flatMap { b in
                af.withUnsafeBufferPointer { ap in
                    gf.withUnsafeBufferPointer { gp in
                        GradCAM.map(activation: ap.baseAddress! + b * 12288, gradient: gp.baseAddress! + b * 12288, h: 6, w: 4, c: 512)
                    }
                }.map { Double($0) }
            }
        }
        let refMaps = maps(refAct, ref)
        XCTAssertGreaterThan(refMaps.filter { $0 > 0 }.count, 0)
        XCTAssertLessThan(relErr(maps(r64.activations, r64.gradients), refMaps), 1e-5)

        // Float32 through the protocol's entry point (Float input, as the explainer calls it).
        let net32 = try goldenNetwork(golden, as: Float.self)
        let c32 = NetworkClassifier(net32, maxBatch: 4)
        c32.bn = .batch
        let xf = x.map { Float($0) }
        let fg = try xf.withUnsafeBufferPointer { try c32.featureGradients($0.baseAddress!, count: 4, targets: [2, 2, 2, 2], layer: .vggishC) }
        let e32 = relErr(fg.gradients.map { Double($0) }, ref)
        print("Grad-CAM gradient at tap C vs golden: float64 \(e64), float32 \(e32)")
        XCTAssertLessThan(e32, 1e-3, "float32 Grad-CAM gradient (README tolerance)")
        let d = zip(fg.gradients, ref).reduce(0.0) { $0 + pow(Double($1.0) - $1.1, 2) }.squareRoot()
        let n = ref.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertLessThan(d / n, 1e-3, "‖d‖ / ‖ref‖")
    }

    /// Every tap has a gradient and a map of the published shape; a missing layer is an error.
    func testEveryTapOfASmallNetwork() throws {
        let net = try smallNetwork()
        let c = NetworkClassifier(net, maxBatch: 4)
        let x = randomPatch(2 * 96 * 64, seed: 8)
        let shapes: [Tap: (Int, Int)] = [.fused: (6, 4), .vggishA: (24, 16), .vggishB: (12, 8), .vggishC: (6, 4), .yamnet: (3, 2)]
        for (tap, (h, w)) in shapes {
            let r = try x.withUnsafeBufferPointer { try GradCAM.explain(c, patches: $0.baseAddress!, count: 2, target: 3, settings: .init(layer: tap)) }
            XCTAssertEqual([r.h, r.w], [h, w], tap.rawValue)
            XCTAssertTrue(r.maps.allSatisfy { $0 >= 0 && $0.isFinite }, tap.rawValue)
        }
        let vggOnly = try Network<Float>(config: ModelConfig(architecture: .vggishOnly, classes: 4, width: 0.125))
        XCTAssertThrowsError(try x.withUnsafeBufferPointer {
            try NetworkClassifier(vggOnly).featureGradients($0.baseAddress!, count: 1, targets: [0], layer: .yamnet)
        }) { XCTAssertTrue("\($0)".contains("does not exist in vggish-only"), "\($0)") }
    }

    /// Numerical trouble is an error naming where it starts, not a map of NaNs.
    func testNonFiniteOutputIsAnError() throws {
        let net = try smallNetwork()
        // (In a hidden layer ReLU would turn NaN into 0: put it where nothing clips it.)
        net.params.value("head/logits/bias")[3] = .nan
        let c = NetworkClassifier(net, maxBatch: 2)
        let x = randomPatch(96 * 64, seed: 1)
        var out = [Double](repeating: 0, count: 4)
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { xb in
            try out.withUnsafeMutableBufferPointer { try c.probabilities(xb.baseAddress!, count: 1, into: $0.baseAddress!) }
        }) { XCTAssertTrue("\($0)".contains("not finite") && "\($0)".contains("head/logits"), "\($0)") }
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { try GradCAM.explain(c, patches: $0.baseAddress!, count: 1, target: 0, settings: .init()) })
    }
}
