import Foundation
import Shared
import XCTest

/// Finite-difference checks (float64) of the kernels the model families added: tanh, the logistic
/// function, the residual sum, squeeze-and-excitation's channel scaling and pool backward, and the
/// mean squared error. Same method as LayerGradientTests: L = Σ r ⊙ layer(inputs) for a fixed
/// random r, analytic gradients from the backward functions with dy = r, central differences.
final class FamilyLayerGradientTests: XCTestCase {
    var rng = SeededGenerator(seed: 20261122)

    func randn(_ n: Int, scale: Double = 1) -> [Double] { (0..<n).map { _ in rng.normal() * scale } }

    func check(_ name: String, inputs: [String: [Double]], tolerance: Double = 1e-6,
               forward: ([String: [Double]]) -> [Double],
               backward: ([String: [Double]], [Double]) -> [String: [Double]]) {
        let y = forward(inputs)
        let r = randn(y.count)
        let analytic = backward(inputs, r)
        let h = 1e-6
        for (key, values) in inputs {
            guard let grad = analytic[key] else { XCTFail("\(name): no gradient for \(key)"); continue }
            XCTAssertEqual(grad.count, values.count, "\(name) \(key)")
            var worst = 0.0, scale = 1e-12
            for i in 0..<values.count {
                var plus = inputs, minus = inputs
                plus[key]![i] += h
                minus[key]![i] -= h
                let lp = zip(forward(plus), r).reduce(0) { $0 + $1.0 * $1.1 }
                let lm = zip(forward(minus), r).reduce(0) { $0 + $1.0 * $1.1 }
                let numeric = (lp - lm) / (2 * h)
                worst = max(worst, abs(numeric - grad[i]))
                scale = max(scale, abs(numeric))
            }
            XCTAssertLessThan(worst / scale, tolerance, "\(name): d/d\(key) max rel error \(worst / scale)")
        }
    }

    func testTanhAgainstLibmAndFiniteDifferences() {
        let x = randn(37, scale: 2) + [0, 25, -25]
        var y = [Double](repeating: 0, count: x.count)
        tanhForward(x, &y, count: x.count)
        for i in x.indices { XCTAssertEqual(y[i], Foundation.tanh(x[i]), accuracy: 1e-15) }
        check("tanh", inputs: ["x": randn(37, scale: 1.5)]) { v in
            var y = [Double](repeating: 0, count: v["x"]!.count)
            tanhForward(v["x"]!, &y, count: y.count)
            return y
        } backward: { v, r in
            var y = [Double](repeating: 0, count: r.count), dx = y
            tanhForward(v["x"]!, &y, count: y.count)
            tanhBackward(r, y, &dx, count: r.count)
            return ["x": dx]
        }
    }

    func testSigmoidIsStableAndDifferentiable() {
        var y = [Double](repeating: 0, count: 4)
        sigmoidForward([0, 800, -800, 2], &y, count: 4)
        XCTAssertEqual(y[0], 0.5)
        XCTAssertEqual(y[1], 1)
        XCTAssertEqual(y[2], 0)   // no overflow to NaN at either end
        XCTAssertEqual(y[3], 1 / (1 + Foundation.exp(-2.0)), accuracy: 1e-15)
        check("sigmoid", inputs: ["x": randn(29, scale: 2)]) { v in
            var y = [Double](repeating: 0, count: v["x"]!.count)
            sigmoidForward(v["x"]!, &y, count: y.count)
            return y
        } backward: { v, r in
            var y = [Double](repeating: 0, count: r.count), dx = y
            sigmoidForward(v["x"]!, &y, count: y.count)
            sigmoidBackward(r, y, &dx, count: r.count)
            return ["x": dx]
        }
    }

    func testResidualSumWithReLU() {
        // Inputs kept away from a + b = 0, where ReLU has no derivative.
        var a = randn(40), b = randn(40)
        for i in a.indices where abs(a[i] + b[i]) < 0.05 { a[i] += 0.2 }
        for relu in [false, true] {
            check("residual relu=\(relu)", inputs: ["a": a, "b": b]) { v in
                var y = [Double](repeating: 0, count: 40)
                residualAdd(v["a"]!, v["b"]!, &y, count: 40, relu: relu)
                return y
            } backward: { v, r in
                var y = [Double](repeating: 0, count: 40)
                residualAdd(v["a"]!, v["b"]!, &y, count: 40, relu: relu)
                var dy = r
                if relu { reluBackward(&dy, y, count: 40) }
                return ["a": dy, "b": dy]
            }
        }
        var dst = [1.0, 2, 3]
        addInPlace(&dst, [0.5, -2, 10], count: 3)
        XCTAssertEqual(dst, [1.5, 0, 13])
    }

    func testChannelScaling() {
        let (batch, positions, c) = (2, 6, 3)
        check("channel scale", inputs: ["x": randn(batch * positions * c), "s": randn(batch * c)]) { v in
            var y = [Double](repeating: 0, count: batch * positions * c)
            channelScaleForward(v["x"]!, v["s"]!, &y, batch: batch, positions: positions, c: c)
            return y
        } backward: { v, r in
            var dx = [Double](repeating: 0, count: batch * positions * c), ds = [Double](repeating: 0, count: batch * c)
            channelScaleBackward(r, v["x"]!, v["s"]!, &dx, &ds, batch: batch, positions: positions, c: c)
            return ["x": dx, "s": ds]
        }
    }

    func testGlobalAveragePoolBackward() {
        let (batch, positions, c) = (3, 5, 4)
        check("global average pool", inputs: ["x": randn(batch * positions * c)]) { v in
            var y = [Double](repeating: 0, count: batch * c)
            globalAvgPool(v["x"]!, &y, batch: batch, positions: positions, c: c)
            return y
        } backward: { _, r in
            var dx = [Double](repeating: 0, count: batch * positions * c)
            globalAvgPoolBackward(r, &dx, batch: batch, positions: positions, c: c)
            return ["x": dx]
        }
    }

    func testSqueezeExcitationBlockComposed() {
        // u → s = mean_p u → e = ReLU(s W1 + b1) → a = σ(e W2 + b2) → y = u ⊙ a: the pieces together.
        let (batch, positions, c, mid) = (2, 4, 4, 2)
        var inputs = ["u": randn(batch * positions * c), "w1": randn(c * mid), "b1": randn(mid, scale: 0.1),
                      "w2": randn(mid * c), "b2": randn(c, scale: 0.1)]
        inputs["b1"] = inputs["b1"]!.map { $0 + 0.3 }   // away from ReLU's kink
        func forward(_ v: [String: [Double]]) -> (y: [Double], s: [Double], e: [Double], a: [Double]) {
            var s = [Double](repeating: 0, count: batch * c), e = [Double](repeating: 0, count: batch * mid)
            var a = [Double](repeating: 0, count: batch * c), y = [Double](repeating: 0, count: batch * positions * c)
            globalAvgPool(v["u"]!, &s, batch: batch, positions: positions, c: c)
            denseForward(s, v["w1"]!, v["b1"]!, &e, batch: batch, inputs: c, outputs: mid, relu: true)
            denseForward(e, v["w2"]!, v["b2"]!, &a, batch: batch, inputs: mid, outputs: c, relu: false)
            sigmoidForward(a, &a, count: a.count)
            channelScaleForward(v["u"]!, a, &y, batch: batch, positions: positions, c: c)
            return (y, s, e, a)
        }
        check("squeeze-excitation", inputs: inputs, forward: { forward($0).y }) { v, r in
            let f = forward(v)
            var du = [Double](repeating: 0, count: r.count), da = [Double](repeating: 0, count: batch * c)
            channelScaleBackward(r, v["u"]!, f.a, &du, &da, batch: batch, positions: positions, c: c)
            sigmoidBackward(da, f.a, &da, count: da.count)
            var dw2 = [Double](repeating: 0, count: mid * c), db2 = [Double](repeating: 0, count: c), de = [Double](repeating: 0, count: batch * mid)
            denseBackwardWeights(f.e, da, &dw2, &db2, batch: batch, inputs: mid, outputs: c)
            denseBackwardData(da, v["w2"]!, &de, batch: batch, inputs: mid, outputs: c)
            reluBackward(&de, f.e, count: de.count)
            var dw1 = [Double](repeating: 0, count: c * mid), db1 = [Double](repeating: 0, count: mid), ds = [Double](repeating: 0, count: batch * c)
            denseBackwardWeights(f.s, de, &dw1, &db1, batch: batch, inputs: c, outputs: mid)
            denseBackwardData(de, v["w1"]!, &ds, batch: batch, inputs: c, outputs: mid)
            var dpool = [Double](repeating: 0, count: r.count)
            globalAvgPoolBackward(ds, &dpool, batch: batch, positions: positions, c: c)
            addInPlace(&du, dpool, count: du.count)
            return ["u": du, "w1": dw1, "b1": db1, "w2": dw2, "b2": db2]
        }
    }

    func testMeanSquaredErrorIsTheWeightedGlobalMean() {
        // Hand case: two samples of two features, part of a global batch of 4, weight 0.5.
        var d = [Double](repeating: 0, count: 4)
        let losses = meanSquaredError([1, 2, 3, 4], [0, 0, 3, 6], batch: 2, features: 2, globalBatch: 4, weight: 0.5, dpred: &d)
        XCTAssertEqual(losses, [2.5, 2])   // (1 + 4)/2, (0 + 4)/2
        // d = 0.5 · 2 (p − t) / (2 · 4)
        XCTAssertEqual(d, [0.125, 0.25, 0, -0.25])
        let target = randn(15)
        check("mse", inputs: ["p": randn(15)]) { v in
            [meanSquaredError(v["p"]!, target, batch: 3, features: 5, globalBatch: 7, weight: 1.7, dpred: nil).reduce(0, +) * 1.7 / 7]
        } backward: { v, r in
            var g = [Double](repeating: 0, count: 15)
            meanSquaredError(v["p"]!, target, batch: 3, features: 5, globalBatch: 7, weight: 1.7, dpred: &g)
            return ["p": g.map { $0 * r[0] }]
        }
    }
}
