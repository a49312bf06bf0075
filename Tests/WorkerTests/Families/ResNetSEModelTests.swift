import Foundation
import Shared
import Worker
import XCTest

/// ResNet-SE end to end in float64: the gradient of the verifier's loss with respect to every
/// tensor (convolutions, batch norm, squeeze-and-excitation, shortcuts, embedding, softmax head,
/// the loss's scale and bias) against central differences; and the float32 Winograd path against
/// the direct one.
final class ResNetSEModelTests: XCTestCase {
    func settings(_ loss: VerifierLoss) -> ResNetSESettings {
        var s = ResNetSESettings()
        s.width = 0.25
        s.blocks = [1, 1, 1, 1]
        s.reduction = 2
        s.embedding = 4
        s.loss = loss
        s.episodeClasses = 2
        s.episodeUtterances = 2
        return s
    }

    func testGradientsMatchFiniteDifferences() throws {
        for loss in VerifierLoss.allCases {
            let model = try ResNetSEModel<Double>(frames: 16, bands: 16, classes: 3, settings: settings(loss))
            var rng = SeededGenerator(seed: 5)
            model.initialize(using: &rng)
            // Biases and batch-norm shifts away from zero, so that few ReLU inputs sit near their kink.
            for spec in model.layout.trainable where spec.name.hasSuffix("/bias") || spec.name.hasSuffix("/beta") {
                let p = model.params.value(spec.name)
                for i in 0..<spec.count { p[i] = 0.1 * rng.normal() }
            }
            let x = (0..<(4 * 16 * 16)).map { _ in rng.normal() }
            let labels = [0, 0, 2, 2]
            func value() -> Double {
                model.forward(x, batch: 4, bn: .batch)
                return model.episodeLoss(classes: 2, utterances: 2, labels: labels, ranks: 1).total
            }
            _ = value()
            model.backward(sink: GradientSink(plan: .single(batch: 4, deterministic: false), primary: model.params.grads))
            let analytic = model.params.grads.array
            let p = model.params.values.pointer
            let h = 1e-6
            for spec in model.layout.trainable {
                let off = model.layout.offsets[spec.name]!
                // Up to 10 entries per tensor, spread over it.
                let picks = Set((0..<min(10, spec.count)).map { $0 * spec.count / min(10, spec.count) })
                var worst = 0.0, scale = 1e-4   // floor: a gradient of ~0 is compared in absolute terms
                for k in picks {
                    let i = off + k, v = p[i]
                    p[i] = v + h; let lp = value()
                    p[i] = v - h; let lm = value()
                    p[i] = v
                    let num = (lp - lm) / (2 * h)
                    worst = max(worst, abs(num - analytic[i]))
                    scale = max(scale, abs(num), abs(analytic[i]))
                }
                XCTAssertLessThan(worst / scale, 1e-5, "\(loss.rawValue): \(spec.name)")
            }
        }
    }

    func testMovingStatisticsFollowTheBatches() throws {
        let model = try ResNetSEModel<Double>(frames: 16, bands: 16, classes: 3, settings: settings(.angularPrototypical))
        var rng = SeededGenerator(seed: 6)
        model.initialize(using: &rng)
        let x = (0..<(4 * 256)).map { _ in 3 + rng.normal() }
        for _ in 0..<150 { model.forward(x, batch: 4, bn: .batch, updateStatistics: true) }
        // After many updates on one batch, moving statistics equal that batch's: both modes agree.
        let train = Array(UnsafeBufferPointer(start: model.forward(x, batch: 4, bn: .batch), count: 16))
        let infer = Array(UnsafeBufferPointer(start: model.forward(x, batch: 4, bn: .moving), count: 16))
        for (a, b) in zip(train, infer) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(a))) }
    }

    func testWinogradPathMatchesTheDirectOne() throws {
        var s = settings(.softmaxAngularPrototypical)
        s.width = 0.5   // 8 channels: Winograd takes the stride-1 3×3 convolutions
        let a = try ResNetSEModel<Float>(frames: 32, bands: 32, classes: 3, settings: s)
        let b = try ResNetSEModel<Float>(frames: 32, bands: 32, classes: 3, settings: s)
        var rng = SeededGenerator(seed: 8)
        a.initialize(using: &rng)
        b.params.copy(from: a.params)
        a.winograd = true
        XCTAssertFalse(b.winograd, "direct convolutions by default")
        let x = (0..<(4 * 32 * 32)).map { _ in Float(rng.normal()) }
        for m in [a, b] {
            m.forward(x, batch: 4, bn: .batch)
            _ = m.episodeLoss(classes: 2, utterances: 2, labels: [0, 0, 1, 1], ranks: 1)
            m.backward(sink: GradientSink(plan: .single(batch: 4, deterministic: false), primary: m.params.grads))
        }
        let ea = a.arena.existing("embedding"), eb = b.arena.existing("embedding")
        for i in 0..<16 { XCTAssertEqual(ea[i], eb[i], accuracy: 1e-3 * max(1, abs(eb[i]))) }
        let ga = a.params.grads.array, gb = b.params.grads.array
        let norm = gb.reduce(Float(0)) { max($0, abs($1)) }
        for i in ga.indices { XCTAssertEqual(ga[i], gb[i], accuracy: 2e-3 * norm) }
    }
}
