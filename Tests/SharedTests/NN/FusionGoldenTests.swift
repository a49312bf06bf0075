import Foundation
import Shared
import TestSupport
import XCTest

/// fusion-v1 against PyTorch float64 (shared/golden/fusion_v1.safetensors, README §4): logits in
/// both batch-norm modes, the loss, every parameter gradient (full or sampled + full-tensor
/// statistics), the input gradient and the Grad-CAM gradient at tap C.
final class FusionGoldenTests: XCTestCase {
    struct Golden {
        let file: SafeTensors
        func doubles(_ k: String) throws -> [Double] { try file.require(k, in: "fusion_v1.safetensors").doubles() }
    }

    func loadGolden() throws -> Golden {
        Golden(file: try SafeTensors.read(path: try TestEnv.shared("golden/fusion_v1.safetensors")))
    }

    /// The golden's parameters are int8 codes times a float64 scale: exact float64 values.
    func makeNetwork<S: Real>(_ golden: Golden, as: S.Type) throws -> Network<S> {
        let net = try Network<S>(config: ModelConfig(architecture: .fusionV1, classes: 4))
        var found = 0
        for spec in net.layout.specs {
            let codes = try golden.doubles("param/" + spec.name)
            let scale = try golden.doubles("scale/" + spec.name)[0]
            XCTAssertEqual(codes.count, spec.count, spec.name)
            let p = net.params.value(spec.name)
            for i in 0..<spec.count { p[i] = S(codes[i] * scale) }
            found += 1
        }
        XCTAssertEqual(found, 132)
        XCTAssertEqual(net.layout.trainableCount + net.layout.stateCount, 11_719_108)
        XCTAssertEqual(net.layout.trainableCount, 11_697_220)
        return net
    }

    /// max|a − b| / max|b|.
    func relErr(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        var d = 0.0, m = 0.0
        for i in 0..<a.count { d = max(d, abs(a[i] - b[i])); m = max(m, abs(b[i])) }
        return m == 0 ? d : d / m
    }

    struct Outcome {
        var logitsInfer = 0.0, logitsTrain = 0.0, loss = 0.0, inputGrad = 0.0, gradcam = 0.0
        var grads: [String: Double] = [:]
        var stats: [String: Double] = [:]
    }

    func run<S: Real>(_ type: S.Type, winograd: Bool = S.self == Float.self) throws -> Outcome {
        let golden = try loadGolden()
        let net = try makeNetwork(golden, as: S.self)
        net.winograd = winograd
        let x = try golden.doubles("input").map { S($0) }
        let labels = try golden.doubles("labels").map { Int($0) }
        var out = Outcome()
        try x.withUnsafeBufferPointer { xb in
            let infer = net.forward(xb.baseAddress!, batch: 4, bn: .moving)
            out.logitsInfer = relErr((0..<16).map { Double(infer[$0]) }, try golden.doubles("logits_infer"))

            // Grad-CAM gradient: d(Σ_b logit[b, 2]) / d tapC, training-mode BN.
            var logits = net.forward(xb.baseAddress!, batch: 4, bn: .batch)
            var onehot = [S](repeating: 0, count: 16)
            for b in 0..<4 { onehot[b * 4 + 2] = 1 }
            let dC = onehot.withUnsafeBufferPointer { net.backward($0.baseAddress!, sink: nil, stopAt: .vggishC)! }
            out.gradcam = relErr((0..<(4 * 6 * 4 * 512)).map { Double(dC[$0]) }, try golden.doubles("gradcam/dlogit2_dtapC"))

            logits = net.forward(xb.baseAddress!, batch: 4, bn: .batch)
            out.logitsTrain = relErr((0..<16).map { Double(logits[$0]) }, try golden.doubles("logits_train"))
            var loss = 0.0
            var dlogits = [S](repeating: 0, count: 16)
            let plan = BatchPlan.single(batch: 4, deterministic: true, chunkSize: 1)
            let sink = GradientSink(plan: plan, primary: net.params.grads)
            dlogits.withUnsafeMutableBufferPointer { d in
                let losses = SoftmaxCrossEntropy.compute(logits, labels: labels, classes: 4, globalBatch: 4, dlogits: d.baseAddress!)
                loss = losses.reduce(0, +) / 4
                net.backward(d.baseAddress!, sink: sink, inputGradient: true)
            }
            out.loss = abs(loss - (try golden.doubles("loss")[0])) / abs(try golden.doubles("loss")[0])
            let dx = net.arena.existing("inputGradient")
            out.inputGrad = relErr((0..<x.count).map { Double(dx[$0]) }, try golden.doubles("grad/input"))
        }
        for spec in net.layout.trainable {
            let g = net.params.tensorGrads(spec.name).map { Double($0) }
            if let full = golden.file["grad/" + spec.name] {
                out.grads[spec.name] = relErr(g, full.doubles())
            } else {
                let idx = try golden.doubles("gradsample/\(spec.name)/index").map { Int($0) }
                out.grads[spec.name] = relErr(idx.map { g[$0] }, try golden.doubles("gradsample/\(spec.name)/value"))
            }
            // Full-tensor statistics: [Σg, Σg², Σg·p, max|g|].
            let ref = try golden.doubles("gradstat/" + spec.name)
            let p = net.params.tensorValues(spec.name).map { Double($0) }
            let s1 = g.reduce(0, +), s2 = g.reduce(0) { $0 + $1 * $1 }
            let sgp = zip(g, p).reduce(0) { $0 + $1.0 * $1.1 }
            let maxAbs = g.map(abs).max() ?? 0
            let pnorm = p.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let e1 = abs(s1 - ref[0]) / max(1e-300, (Double(g.count) * ref[1]).squareRoot())
            let e2 = abs(s2 - ref[1]) / max(1e-300, ref[1])
            let e3 = abs(sgp - ref[2]) / max(1e-300, ref[1].squareRoot() * pnorm)
            let e4 = abs(maxAbs - ref[3]) / max(1e-300, ref[3])
            out.stats[spec.name] = max(e1, e2, e3, e4)
        }
        return out
    }

    func testDoubleMatchesPyTorchFloat64Everywhere() throws {
        let o = try run(Double.self)
        print("float64: logits \(o.logitsInfer) / \(o.logitsTrain), loss \(o.loss), dx \(o.inputGrad), gradcam \(o.gradcam), worst grad \(o.grads.values.max() ?? 0), worst stat \(o.stats.values.max() ?? 0)")
        XCTAssertLessThan(o.logitsInfer, 1e-10)
        XCTAssertLessThan(o.logitsTrain, 1e-10)
        XCTAssertLessThan(o.loss, 1e-10)
        XCTAssertLessThan(o.inputGrad, 1e-9)
        XCTAssertLessThan(o.gradcam, 1e-9)
        XCTAssertEqual(o.grads.count, 78)
        for (name, e) in o.grads.sorted(by: { $0.key < $1.key }) { XCTAssertLessThan(e, 1e-9, name) }
        for (name, e) in o.stats.sorted(by: { $0.key < $1.key }) { XCTAssertLessThan(e, 1e-9, "gradstat " + name) }
    }

    /// Float32 with direct convolutions (the arithmetic of PyTorch's reference) within the
    /// README's tolerances, except YAMNet layers 1–7 whose float32 gradients legitimately differ
    /// (a pre-ReLU value of +1.17e-6 flips sign in float32; README caveat).
    func testFloatWithinFloat32Tolerances() throws {
        try checkFloat(winograd: false, gradientTolerance: 1e-3)
    }

    /// Float32 as training runs it, with Winograd F(4×4, 3×3) in VGGish's 3×3 layers. Its forward
    /// pass stays within the README's tolerances (inference logits 1.6e-6 from float64, direct
    /// float32 0.9e-6), but VGGish's gradients drift further from float64 towards the top of the
    /// network (measured on a Zen 4 EPYC: conv3_1 1.6e-4 … conv4_2's bias 1.9e-3; direct float32:
    /// ≤ 4.3e-5 everywhere), the mark of values within rounding of zero that take the other side
    /// of a ReLU or max pool. docs/MODELS.md states this bound.
    func testFloatWithWinogradAsTrainedWithinItsBound() throws {
        try checkFloat(winograd: true, gradientTolerance: 3e-3)
    }

    func checkFloat(winograd: Bool, gradientTolerance: Double) throws {
        let o = try run(Float.self, winograd: winograd)
        let exemptWorst = o.grads.filter { $0.key.hasPrefix("yamnet/layer") }.values.max() ?? 0
        let others = o.grads.filter { k, _ in !(1...7).contains { k.hasPrefix("yamnet/layer\($0)/") } }.values.max() ?? 0
        print("float32 (winograd \(winograd)): logits \(o.logitsInfer) / \(o.logitsTrain), loss \(o.loss), dx \(o.inputGrad), gradcam \(o.gradcam), worst grad (held) \(others), worst YAMNet grad \(exemptWorst)")
        XCTAssertLessThan(o.logitsInfer, 1e-4)
        XCTAssertLessThan(o.logitsTrain, 1e-4)
        XCTAssertLessThan(o.loss, 1e-4)
        XCTAssertLessThan(o.gradcam, 1e-3)
        let exempt = (1...7).map { "yamnet/layer\($0)/" }
        for (name, e) in o.grads.sorted(by: { $0.key < $1.key }) where !exempt.contains(where: name.hasPrefix) {
            XCTAssertLessThan(e, gradientTolerance, name)
        }
    }
}
