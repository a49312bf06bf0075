import Foundation
import Shared
import TestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    func testRoundTripKeepsValuesShapesAndMetadata() throws {
        var st = SafeTensors(metadata: ["format": "pt", "note": "quote \" and \\ backslash"])
        st["a/weights"] = StoredTensor([1.5, -2.25, 3, 4, 5, 6], shape: [2, 3])
        st["b"] = StoredTensor([Double.pi], shape: [1])
        st["c"] = StoredTensor([Int64.max, -7], shape: [2])
        let data = st.encode()
        // Header length is little-endian and the data section starts 8-byte aligned.
        let n = data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(n % 8, 0)
        let back = try SafeTensors.decode(data)
        XCTAssertEqual(back["a/weights"]?.shape, [2, 3])
        XCTAssertEqual(back["a/weights"]?.floats(), [1.5, -2.25, 3, 4, 5, 6])
        XCTAssertEqual(back["b"]?.doubles(), [Double.pi])
        XCTAssertEqual(back["c"]?.int64s(), [Int64.max, -7])
        XCTAssertEqual(back.metadata, st.metadata)
    }

    func testTruncatedFileIsRejectedWithTheTensorNamed() throws {
        var st = SafeTensors()
        st["weights"] = StoredTensor([Float](repeating: 1, count: 100), shape: [10, 10])
        let data = st.encode()
        XCTAssertThrowsError(try SafeTensors.decode(data.prefix(data.count - 16), source: "w.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("w.safetensors"), "\(error)")
            XCTAssertTrue("\(error)".contains("weights"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensors.decode(Data([1, 2, 3]), source: "tiny"))
    }

    /// The golden files were written by Python's safetensors: reading them checks the format
    /// against an independent writer.
    func testReadsGoldenFilesWrittenByPython() throws {
        let path = try TestEnv.shared("weights/yamnet/yamnet.safetensors")
        let st = try SafeTensors.read(path: path)
        XCTAssertEqual(st.tensors.count, 110)
        XCTAssertEqual(st["layer1/conv/kernel"]?.shape, [3, 3, 1, 32])
        XCTAssertEqual(st["logits/kernel"]?.shape, [1024, 521])
        let total = st.tensors.values.reduce(0) { $0 + $1.count }
        XCTAssertEqual(total, 3_751_369)
        let golden = try SafeTensors.read(path: try TestEnv.shared("golden/fusion_v1.safetensors"))
        XCTAssertEqual(golden["labels"]?.int64s(), [0, 1, 2, 3])
        XCTAssertEqual(golden["loss"]?.doubles().first ?? 0, 3.887823, accuracy: 1e-6)
    }
}
