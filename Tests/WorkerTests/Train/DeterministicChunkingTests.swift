import Foundation
import Shared
import XCTest

/// Deterministic mode computes each parameter gradient per chunk and adds the chunks along a
/// tree; fast mode does one pass over the batch. Both are the same gradient up to float32 rounding.
final class DeterministicChunkingTests: XCTestCase {
    func gradients(deterministic: Bool) throws -> Network<Float> {
        let net = try Network<Float>(config: ModelConfig(architecture: .fusionV1, classes: 4, width: 0.25))
        var rng = SeededGenerator(seed: 11)
        net.params.initialize(using: &rng)
        let batch = 32
        let x = (0..<batch * net.inputSize).map { _ in Float(rng.normal()) - 3 }
        let labels = (0..<batch).map { $0 % 4 }
        let logits = x.withUnsafeBufferPointer { net.forward($0.baseAddress!, batch: batch, bn: .batch) }
        var d = [Float](repeating: 0, count: batch * 4)
        _ = d.withUnsafeMutableBufferPointer { SoftmaxCrossEntropy.compute(logits, labels: labels, classes: 4, globalBatch: batch, dlogits: $0.baseAddress!) }
        let sink = GradientSink(plan: BatchPlan.single(batch: batch, deterministic: deterministic, chunkSize: 4), primary: net.params.grads)
        d.withUnsafeBufferPointer { _ = net.backward($0.baseAddress!, sink: sink) }
        return net
    }

    func testChunkedGradientsEqualOnePassUpToRounding() throws {
        let a = try gradients(deterministic: true), b = try gradients(deterministic: false)
        var worst = 0.0
        for spec in a.layout.trainable {
            let ga = a.params.tensorGrads(spec.name), gb = b.params.tensorGrads(spec.name)
            let scale = Double(gb.map(abs).max() ?? 0)
            guard scale > 0 else { continue }
            let d = zip(ga, gb).map { Double(abs($0 - $1)) }.max()! / scale
            worst = max(worst, d)
            XCTAssertLessThan(d, 1e-4, spec.name)
        }
        print("deterministic vs one-pass gradients: max relative difference \(worst)")
        XCTAssertGreaterThan(worst, 0, "chunking should change the rounding somewhere")
    }
}
