import Foundation
import Shared
import XCTest

/// Finite-difference checks of every layer's backward pass (float64).
///
/// Each test defines L = Σ r ⊙ layer(inputs) for a fixed random r, gets the analytic gradients
/// from the layer's backward functions with dy = r, and compares them with central differences
/// (h = 1e-6) of L for every input and parameter entry.
final class LayerGradientTests: XCTestCase {
    var rng = SeededGenerator(seed: 20261121)

    func randn(_ n: Int, scale: Double = 1) -> [Double] { (0..<n).map { _ in rng.normal() * scale } }

    /// Compares analytic gradients with central differences for every entry of every input.
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

    // MARK: - Convolutions

    func convCase(_ g: ConvGeometry, batch: Int = 2, relu: Bool) {
        let name = "conv \(g.kh)×\(g.kw)/\(g.stride) \(g.h)×\(g.w)×\(g.cin)→\(g.cout) relu=\(relu)"
        let inputs = ["x": randn(batch * g.inSize), "w": randn(g.kh * g.kw * g.cin * g.cout, scale: 0.5), "b": randn(g.cout, scale: 0.1)]
        let ws = Buffer<Double>(count: convWorkspaceCount(g, batch, 8))
        func fwd(_ v: [String: [Double]]) -> [Double] {
            var y = [Double](repeating: 0, count: batch * g.outSize)
            convForward(v["x"]!, v["w"]!, v["b"]!, &y, batch: batch, g, relu: relu, workspace: ws.pointer)
            return y
        }
        check(name, inputs: inputs, forward: fwd) { v, r in
            var dy = r
            if relu { let y = fwd(v); reluBackward(&dy, y, count: dy.count) }
            var dx = [Double](repeating: 0, count: batch * g.inSize)
            var dw = [Double](repeating: 0, count: g.k * g.cout), db = [Double](repeating: 0, count: g.cout)
            convBackwardData(dy, v["w"]!, &dx, batch: batch, g, workspace: ws.pointer)
            convBackwardWeights(v["x"]!, dy, &dw, &db, batch: batch, g, workspace: ws.pointer)
            return ["x": dx, "w": dw, "b": db]
        }
    }

    func testConvolutionSamePaddingStrideOne() {
        convCase(ConvGeometry(h: 6, w: 5, cin: 3, cout: 4, kh: 3, kw: 3, stride: 1), relu: false)
        convCase(ConvGeometry(h: 4, w: 4, cin: 2, cout: 3, kh: 3, kw: 3, stride: 1), relu: true)
    }

    func testConvolutionStrideTwoPadsAfterLikeTensorFlow() {
        let even = ConvGeometry(h: 6, w: 4, cin: 2, cout: 3, kh: 3, kw: 3, stride: 2)
        XCTAssertEqual([even.ho, even.wo, even.padTop, even.padLeft], [3, 2, 0, 0])
        convCase(even, relu: false)
        let odd = ConvGeometry(h: 5, w: 7, cin: 2, cout: 2, kh: 3, kw: 3, stride: 2)
        XCTAssertEqual([odd.ho, odd.wo, odd.padTop, odd.padLeft], [3, 4, 1, 1])
        convCase(odd, relu: false)
    }

    func testConvolutionAnyKernelAndPointwise() {
        convCase(ConvGeometry(h: 5, w: 6, cin: 2, cout: 3, kh: 2, kw: 4, stride: 2), relu: false)
        convCase(ConvGeometry(h: 3, w: 4, cin: 5, cout: 3, kh: 1, kw: 1, stride: 1), relu: true)
        convCase(ConvGeometry(h: 6, w: 6, cin: 1, cout: 2, kh: 5, kw: 5, stride: 3), relu: false)
    }

    func testDepthwiseConvolution() {
        for stride in [1, 2] {
            let g = ConvGeometry(h: 6, w: 4, cin: 3, cout: 3, kh: 3, kw: 3, stride: stride)
            let batch = 2
            let inputs = ["x": randn(batch * g.inSize), "k": randn(9 * g.cin)]
            func fwd(_ v: [String: [Double]]) -> [Double] {
                var y = [Double](repeating: 0, count: batch * g.outSize)
                depthwiseForward(v["x"]!, v["k"]!, &y, batch: batch, g)
                return y
            }
            check("depthwise stride \(stride)", inputs: inputs, forward: fwd) { v, r in
                var dx = [Double](repeating: 0, count: batch * g.inSize), dk = [Double](repeating: 0, count: 9 * g.cin)
                depthwiseBackwardData(r, v["k"]!, &dx, batch: batch, g)
                depthwiseBackwardWeights(v["x"]!, r, &dk, batch: batch, g)
                return ["x": dx, "k": dk]
            }
        }
    }

    // MARK: - Batch norm

    /// One pass of sums and squares in Double gives float32's mean and variance even where the mean
    /// dwarfs the spread (the case that breaks E[x²] − E[x]² in float32).
    func testOnePassMomentsMatchTheTwoPassOnes() {
        var rng = SeededGenerator(seed: 11)
        let batch = 4, positions = 500, c = 3
        let shift: [Float] = [0, 300, -1_000], spread: [Float] = [1, 0.5, 2]
        var x = [Float](repeating: 0, count: batch * positions * c)
        for i in x.indices { x[i] = shift[i % c] + spread[i % c] * Float(Double.random(in: -1...1, using: &rng)) }
        var rows = [Double](repeating: 0, count: batch * 2 * c)
        bnSampleSumsAndSquares(x, batch: batch, positions: positions, channels: c, &rows)
        let n = Double(batch * positions)
        let (mean, variance) = bnMoments(LocalStatistics.columnSums(rows, localBatch: batch, width: 2 * c), channels: c, count: n)
        for ch in 0..<c {
            let values = stride(from: ch, to: x.count, by: c).map { Double(x[$0]) }
            let m = values.reduce(0, +) / n
            let v = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / n
            XCTAssertEqual(mean[ch], m, accuracy: 1e-9 * max(1, abs(m)), "channel \(ch)")
            XCTAssertEqual(variance[ch], v, accuracy: 1e-7 * v, "channel \(ch)")
        }
    }

    /// Training-mode batch norm over the batch (the gradient flows through mean and variance),
    /// with and without a scale term, followed by ReLU as in YAMNet.
    func testBatchNormTrainingMode() {
        let batch = 3, positions = 4, c = 2, eps = 1e-4
        for withGamma in [false, true] {
            var inputs = ["x": randn(batch * positions * c, scale: 2), "beta": randn(c, scale: 0.3)]
            if withGamma { inputs["gamma"] = randn(c).map { 1 + 0.3 * $0 } }
            func stats(_ x: [Double]) -> (mean: [Double], istd: [Double]) {
                var rows = [Double](repeating: 0, count: batch * 2 * c)
                bnSampleSumsAndSquares(x, batch: batch, positions: positions, channels: c, &rows)
                let sums = LocalStatistics.columnSums(rows, localBatch: batch, width: 2 * c)
                let (mean, variance) = bnMoments(sums, channels: c, count: Double(batch * positions))
                return (mean, variance.map { 1 / ($0 + eps).squareRoot() })
            }
            func fwd(_ v: [String: [Double]]) -> [Double] {
                let (mean, istd) = stats(v["x"]!)
                var y = [Double](repeating: 0, count: v["x"]!.count)
                bnApply(v["x"]!, &y, mean: mean, invStd: istd, gamma: v["gamma"], beta: v["beta"]!, rows: batch * positions, channels: c, relu: true)
                return y
            }
            check("batch norm (gamma: \(withGamma))", inputs: inputs, forward: fwd) { v, r in
                let x = v["x"]!
                let (mean, istd) = stats(x)
                var dy = r
                reluBackward(&dy, fwd(v), count: dy.count)
                var rows = [Double](repeating: 0, count: batch * 2 * c)
                bnBackwardSampleSums(dy, x, mean: mean, invStd: istd, batch: batch, positions: positions, channels: c, &rows)
                let s1 = (0..<c).map { ch in (0..<batch).reduce(0) { $0 + rows[$1 * 2 * c + ch] } }
                let s2 = (0..<c).map { ch in (0..<batch).reduce(0) { $0 + rows[$1 * 2 * c + c + ch] } }
                var dx = [Double](repeating: 0, count: x.count)
                bnBackwardData(dy, x, &dx, mean: mean, invStd: istd, gamma: v["gamma"], sumDy: s1, sumDyXhat: s2,
                               count: batch * positions, rows: batch * positions, channels: c)
                // dβ = Σ dy, dγ = Σ dy·x̂ (the two backward sums).
                var grads = ["x": dx, "beta": s1]
                if v["gamma"] != nil { grads["gamma"] = s2 }
                return grads
            }
        }
    }

    func testBatchNormInferenceMode() {
        let rows = 5, c = 3
        let mean = randn(c), istd = randn(c).map { 0.5 + abs($0) }
        let inputs = ["x": randn(rows * c), "beta": randn(c)]
        func fwd(_ v: [String: [Double]]) -> [Double] {
            var y = [Double](repeating: 0, count: rows * c)
            bnApply(v["x"]!, &y, mean: mean, invStd: istd, gamma: nil, beta: v["beta"]!, rows: rows, channels: c, relu: false)
            return y
        }
        check("batch norm, moving statistics", inputs: inputs, forward: fwd) { _, r in
            var dx = [Double](repeating: 0, count: rows * c)
            bnBackwardDataFixed(r, &dx, invStd: istd, gamma: nil, rows: rows, channels: c)
            var db = [Double](repeating: 0, count: c)
            columnSums(r, &db, rows: rows, channels: c)
            return ["x": dx, "beta": db]
        }
    }

    // MARK: - Pools, upsampling, concatenation

    func testMaxPool() {
        let batch = 2, h = 4, w = 6, c = 3
        // Distinct values so no window has a tie (ties only occur between ReLU zeros in the model).
        let inputs = ["x": randn(batch * h * w * c)]
        func fwd(_ v: [String: [Double]]) -> [Double] {
            var y = [Double](repeating: 0, count: batch * h * w * c / 4)
            maxPool2Forward(v["x"]!, &y, batch: batch, h: h, w: w, c: c)
            return y
        }
        check("max pool", inputs: inputs, forward: fwd) { v, r in
            ["x": maxPoolBackward(r, v["x"]!, batch: batch, h: h, w: w, c: c, relu: false)]
        }
    }

    /// The pool fused with the ReLU that precedes it in VGGish: max(ReLU(x)).
    func testMaxPoolAfterReLU() {
        let batch = 2, h = 4, w = 4, c = 3
        let inputs = ["x": randn(batch * h * w * c)]
        func fwd(_ v: [String: [Double]]) -> [Double] {
            let r = v["x"]!.map { max(0, $0) }
            var y = [Double](repeating: 0, count: batch * h * w * c / 4)
            maxPool2Forward(r, &y, batch: batch, h: h, w: w, c: c)
            return y
        }
        check("ReLU + max pool", inputs: inputs, forward: fwd) { v, r in
            ["x": maxPoolBackward(r, v["x"]!.map { max(0, $0) }, batch: batch, h: h, w: w, c: c, relu: true)]
        }
    }

    /// The pool's backward as training runs it: indices recorded by the forward pass, then used.
    private func maxPoolBackward(_ dy: [Double], _ x: [Double], batch: Int, h: Int, w: Int, c: Int, relu: Bool) -> [Double] {
        var y = [Double](repeating: 0, count: dy.count), indices = [UInt8](repeating: 9, count: dy.count)
        var dx = [Double](repeating: 7, count: x.count)
        maxPool2Forward(x, &y, indices: &indices, batch: batch, h: h, w: w, c: c, relu: relu)
        maxPool2Backward(dy, indices: indices, &dx, batch: batch, h: h, w: w, c: c)
        return dx
    }

    func testAveragePool() {
        for k in [2, 4] {
            let batch = 2, h = 2 * k, w = 3 * k, c = 2
            let inputs = ["x": randn(batch * h * w * c)]
            func fwd(_ v: [String: [Double]]) -> [Double] {
                var y = [Double](repeating: 0, count: batch * (h / k) * (w / k) * c)
                avgPoolForward(v["x"]!, &y, batch: batch, h: h, w: w, c: c, k: k)
                return y
            }
            check("average pool \(k)", inputs: inputs, forward: fwd) { _, r in
                var dx = [Double](repeating: 0, count: batch * h * w * c)
                avgPoolBackwardAdd(r, &dx, batch: batch, h: h, w: w, c: c, k: k)
                return ["x": dx]
            }
        }
    }

    func testNearestUpsamplingIntoAConcatenation() {
        // x (2, 3, 2, 3) upsampled ×2 into channels 1..<4 of a 5-channel map, as YAMNet's map in Z.
        let batch = 2, h = 3, w = 2, c = 3, total = 5, offset = 1
        let other = randn(batch * 2 * h * 2 * w * 1)
        let inputs = ["x": randn(batch * h * w * c), "v": other]
        func fwd(_ vals: [String: [Double]]) -> [Double] {
            var z = [Double](repeating: 0, count: batch * 4 * h * w * total)
            let rows = batch * 4 * h * w
            let v = vals["v"]!
            for r in 0..<rows { z[r * total] = v[r] }
            upsampleNearest(vals["x"]!, &z, batch: batch, h: h, w: w, c: c, factor: 2, yChannels: total, cOffset: offset)
            return z
        }
        check("upsample + concat", inputs: inputs, forward: fwd) { _, r in
            var dx = [Double](repeating: 0, count: batch * h * w * c)
            upsampleNearestBackward(r, &dx, batch: batch, h: h, w: w, c: c, factor: 2, yChannels: total, cOffset: offset)
            var dv = [Double](repeating: 0, count: batch * 4 * h * w)
            extractChannels(r, &dv, rows: batch * 4 * h * w, c: 1, yChannels: total, cOffset: 0)
            return ["x": dx, "v": dv]
        }
    }

    // MARK: - Dense and loss

    func testDenseWithReLU() {
        let batch = 3, nin = 5, nout = 4
        let inputs = ["x": randn(batch * nin), "w": randn(nin * nout), "b": randn(nout)]
        func fwd(_ v: [String: [Double]]) -> [Double] {
            var y = [Double](repeating: 0, count: batch * nout)
            denseForward(v["x"]!, v["w"]!, v["b"]!, &y, batch: batch, inputs: nin, outputs: nout, relu: true)
            return y
        }
        check("dense", inputs: inputs, forward: fwd) { v, r in
            var dy = r
            reluBackward(&dy, fwd(v), count: dy.count)
            var dx = [Double](repeating: 0, count: batch * nin), dw = [Double](repeating: 0, count: nin * nout), db = [Double](repeating: 0, count: nout)
            denseBackwardData(dy, v["w"]!, &dx, batch: batch, inputs: nin, outputs: nout)
            denseBackwardWeights(v["x"]!, dy, &dw, &db, batch: batch, inputs: nin, outputs: nout)
            return ["x": dx, "w": dw, "b": db]
        }
    }

    func testSoftmaxCrossEntropyIsTheMeanOverTheGlobalBatch() {
        let batch = 3, classes = 4, global = 8
        let labels = [2, 0, 3]
        let inputs = ["z": randn(batch * classes, scale: 3)]
        // The forward "output" is the scalar loss of this rank's share of a global mean.
        func fwd(_ v: [String: [Double]]) -> [Double] {
            [SoftmaxCrossEntropy.compute(v["z"]!, labels: labels, classes: classes, globalBatch: global, dlogits: nil).reduce(0, +) / Double(global)]
        }
        check("softmax cross-entropy", inputs: inputs, forward: fwd) { v, r in
            var d = [Double](repeating: 0, count: batch * classes)
            _ = SoftmaxCrossEntropy.compute(v["z"]!, labels: labels, classes: classes, globalBatch: global, dlogits: &d)
            return ["z": d.map { $0 * r[0] }]
        }
        // A hand-computed case: logits (0, ln 3) for label 1 → p = (1/4, 3/4), loss = ln(4/3).
        let loss = SoftmaxCrossEntropy.compute([0, log(3.0)], labels: [1], classes: 2, globalBatch: 1, dlogits: nil)[0]
        XCTAssertEqual(loss, log(4.0 / 3), accuracy: 1e-15)
    }
}
