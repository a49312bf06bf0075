import Foundation
import Shared
import TestSupport
import XCTest

/// Pretrained YAMNet (shared/weights/yamnet) against TensorFlow's SavedModel outputs on the stored
/// patches (shared/golden/yamnet16k.safetensors, README §2): embeddings within 1e-4, scores 2e-5.
final class YAMNetGoldenTests: XCTestCase {
    func check<S: Real>(_ type: S.Type, tag: String) throws -> (embedding: Double, score: Double, top: Int) {
        let golden = try SafeTensors.read(path: try TestEnv.shared("golden/yamnet16k.safetensors"))
        let model = try YAMNetClassifier<S>()
        try model.load(path: try TestEnv.shared("weights/yamnet/yamnet.safetensors"))
        let patches = try golden.require("\(tag)/patches").floats().map { S($0) }
        let p = patches.count / (96 * 64)
        let (emb, scores) = patches.withUnsafeBufferPointer { model.run($0.baseAddress!, batch: p) }
        let refE = try golden.require("\(tag)/embeddings").doubles(), refS = try golden.require("\(tag)/scores").doubles()
        let de = zip(emb, refE).map { abs(Double($0) - $1) }.max()!
        let ds = zip(scores, refS).map { abs(Double($0) - $1) }.max()!
        // The class with the highest mean score (Speech for the CASIA clip, Sine wave for the synth).
        var mean = [Double](repeating: 0, count: 521)
        for i in 0..<p { for k in 0..<521 { mean[k] += Double(scores[i * 521 + k]) } }
        return (de, ds, mean.indices.max { mean[$0] < mean[$1] }!)
    }

    func testFloatMatchesTensorFlowOnStoredPatches() throws {
        for (tag, top) in [("casia", 0), ("synth", 495)] {
            let r = try check(Float.self, tag: tag)
            print("yamnet float32 \(tag): embeddings \(r.embedding), scores \(r.score)")
            XCTAssertLessThanOrEqual(r.embedding, 1e-4, tag)
            XCTAssertLessThanOrEqual(r.score, 2e-5, tag)
            XCTAssertEqual(r.top, top, tag)
        }
    }

    func testDoubleMatchesTensorFlowOnStoredPatches() throws {
        for tag in ["casia", "synth"] {
            let r = try check(Double.self, tag: tag)
            XCTAssertLessThanOrEqual(r.embedding, 1e-4, tag)
            XCTAssertLessThanOrEqual(r.score, 2e-5, tag)
        }
    }

    func testWeightsFileWithWrongTensorsIsRefusedNamingEach() throws {
        var st = try SafeTensors.read(path: try TestEnv.shared("weights/yamnet/yamnet.safetensors"))
        st["layer3/pointwise_conv/kernel"] = StoredTensor([Float](repeating: 0, count: 64 * 64), shape: [1, 1, 64, 64])
        st["layer5/depthwise_conv/depthwise_kernel"] = nil
        st["extra/tensor"] = StoredTensor([Float](repeating: 0, count: 3), shape: [3])
        let model = try YAMNetClassifier<Float>()
        XCTAssertThrowsError(try model.params.load(st, source: "bad.safetensors")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad.safetensors"), text)
            XCTAssertTrue(text.contains("tensor layer3/pointwise_conv/kernel has shape [1, 1, 64, 64], the model needs [1, 1, 64, 128]"), text)
            XCTAssertTrue(text.contains("missing tensor layer5/depthwise_conv/depthwise_kernel"), text)
            XCTAssertTrue(text.contains("unexpected tensor extra/tensor"), text)
        }
    }
}
