import Foundation
import Shared
import Worker
import XCTest

/// The autoencoder family: every gradient against finite differences (float64), and training
/// that lowers both losses.
final class AutoencoderTests: XCTestCase {
    func sink<S: Real>(_ params: Parameters<S>, batch: Int) -> GradientSink<S> {
        GradientSink(plan: .single(batch: batch, deterministic: false), primary: params.grads)
    }

    func testGradientsMatchFiniteDifferences() throws {
        for (classifierHidden, denoise) in [(3, false), (0, true)] {
            var settings = AutoencoderSettings()
            settings.hidden = 5
            settings.latent = 2
            settings.classifierHidden = classifierHidden
            settings.reconstructionWeight = 0.7
            settings.classificationWeight = 1.3
            let (d, classes, batch) = (6, 3, 4)
            let model = try AutoencoderModel<Double>(inputs: d, classes: classes, settings: settings)
            var rng = SeededGenerator(seed: 3)
            model.initialize(using: &rng)
            model.setNormalization(mean: (0..<d).map { _ in rng.normal() }, std: (0..<d).map { _ in 0.5 + rng.uniform() })
            let x = (0..<(batch * d)).map { _ in rng.normal() }
            let noise: [Double]? = denoise ? (0..<(batch * d)).map { _ in 0.3 * rng.normal() } : nil
            let labels = [0, 2, 1, 2]
            func loss() -> Double {
                if let noise { model.forward(x, batch: batch, noise: noise) } else { model.forward(x, batch: batch) }
                let (r, c) = model.loss(labels: labels, globalBatch: batch)
                return 0.7 * r.reduce(0, +) / Double(batch) + 1.3 * c.reduce(0, +) / Double(batch)
            }
            _ = loss()
            model.backward(sink: sink(model.params, batch: batch))
            let analytic = model.params.grads.array
            let p = model.params.values.pointer
            let h = 1e-6
            var worst = 0.0, scale = 1e-12
            for i in 0..<model.layout.trainableCount {
                let v = p[i]
                p[i] = v + h; let lp = loss()
                p[i] = v - h; let lm = loss()
                p[i] = v
                let num = (lp - lm) / (2 * h)
                worst = max(worst, abs(num - analytic[i]))
                scale = max(scale, abs(num))
            }
            XCTAssertLessThan(worst / scale, 1e-6, "classifier hidden \(classifierHidden), denoising \(denoise)")
            // The corruption enters the encoder only: the target is the clean normalised input.
            let m = model.params.value("input/mean"), s = model.params.value("input/std")
            for k in 0..<(batch * d) { XCTAssertEqual(model.normalizedInput[k], (x[k] - m[k % d]) / s[k % d], accuracy: 1e-12) }
        }
    }

    /// Four classes whose 20 features differ along two directions, plus noise: reconstruction
    /// through a 3-dimensional code and classification both improve by large factors.
    func testTrainingLowersBothLosses() throws {
        var rng = SeededGenerator(seed: 11)
        let (d, n, classes) = (20, 160, 4)
        let dirs = (0..<2).map { _ in (0..<d).map { _ in rng.normal() } }
        let centres: [[Double]] = [[2, 0], [-2, 0], [0, 2], [0, -2]]
        var x = [Float](repeating: 0, count: n * d), labels = [Int](repeating: 0, count: n)
        for i in 0..<n {
            let c = i % classes
            labels[i] = c
            let a = centres[c][0] + 0.4 * rng.normal(), b = centres[c][1] + 0.4 * rng.normal()
            for j in 0..<d { x[i * d + j] = Float(a * dirs[0][j] + b * dirs[1][j] + 0.1 * rng.normal() + 5) }
        }
        var settings = AutoencoderSettings()
        settings.hidden = 16
        settings.latent = 3
        let model = try AutoencoderModel<Float>(inputs: d, classes: classes, settings: settings)
        model.initialize(using: &rng)
        var rows = [[Double]]()
        for i in 0..<n { rows.append((0..<d).map { Double(x[i * d + $0]) }) }
        var mean = [Double](repeating: 0, count: d), sd = mean
        for r in rows { for j in 0..<d { mean[j] += r[j] / Double(n) } }
        for r in rows { for j in 0..<d { sd[j] += (r[j] - mean[j]) * (r[j] - mean[j]) / Double(n) } }
        model.setNormalization(mean: mean, std: sd.map { $0.squareRoot() })
        let adam = Adam<Float>(count: model.layout.trainableCount, settings: .init(learningRate: 0.01))
        let s = sink(model.params, batch: n)
        func step() -> (Double, Double) {
            x.withUnsafeBufferPointer { model.forward($0.baseAddress!, batch: n) }
            let (r, c) = model.loss(labels: labels, globalBatch: n)
            model.backward(sink: s)
            adam.update(model.params.values, model.params.grads, ranges: [0 ..< model.layout.trainableCount])
            return (r.reduce(0, +) / Double(n), c.reduce(0, +) / Double(n))
        }
        let first = step()
        var last = first
        for _ in 0..<400 { last = step() }
        XCTAssertLessThan(last.0, 0.2 * first.0, "reconstruction \(first.0) → \(last.0)")
        XCTAssertLessThan(last.1, 0.1 * first.1, "classification \(first.1) → \(last.1)")
        x.withUnsafeBufferPointer { model.forward($0.baseAddress!, batch: n) }
        XCTAssertEqual(zip(model.predictions(), labels).filter { $0 == $1 }.count, n)
    }

    func testRefusesAnOvercompleteCode() {
        var s = AutoencoderSettings()
        s.latent = 256
        XCTAssertThrowsError(try AutoencoderModel<Float>(inputs: 256, classes: 4, settings: s)) { e in
            XCTAssertTrue("\(e)".contains("undercomplete"), "\(e)")
        }
    }
}
