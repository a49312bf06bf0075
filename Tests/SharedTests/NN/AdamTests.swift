import XCTest
import Shared

final class AdamTests: XCTestCase {
    /// The vectorised update equals PyTorch's formula evaluated one element at a time, each
    /// operation rounded on its own, bit for bit; `previous` receives the values before it, and
    /// parameters outside the trained ranges are left alone.
    func testUpdateEqualsTheScalarFormulaAndKeepsThePreviousValues() {
        let n = 70_001, frozen = 1_000 ..< 1_700
        var rng = SeededGenerator(seed: 9)
        let params = Buffer<Float>(count: n), grads = Buffer<Float>(count: n)
        for i in 0..<n { params[i] = Float(rng.normal()); grads[i] = Float(rng.normal() * 1e-2) }
        let settings = Adam<Float>.Settings(learningRate: 0.01)
        let adam = Adam<Float>(count: n, settings: settings)
        var p = (0..<n).map { params[$0] }, m = [Float](repeating: 0, count: n), v = m
        let previous = Buffer<Float>(count: n)
        for step in 1...3 {
            let before = p
            adam.update(params, grads, ranges: [0 ..< frozen.lowerBound, frozen.upperBound ..< n], rateScale: 0.5, previous: previous.pointer)
            let b1 = Float(0.9), b2 = Float(0.999), lr = Float(0.01 * 0.5), eps = Float(1e-8)
            let c1 = Float(1 - pow(0.9, Double(step))), c2 = Float(1 - pow(0.999, Double(step)))
            for i in 0..<n where !frozen.contains(i) {
                let g = grads[i]
                let mi = b1 * m[i] + (1 - b1) * g
                let vi = b2 * v[i] + (1 - b2) * g * g
                m[i] = mi; v[i] = vi
                p[i] = before[i] - lr * (mi / c1) / ((vi / c2).squareRoot() + eps)
            }
            let wrong = (0..<n).filter { params[$0].bitPattern != p[$0].bitPattern }
            XCTAssertEqual(wrong.count, 0, "step \(step): parameters differ from the formula, first at \(wrong.first ?? -1)")
            let lost = (0..<n).filter { !frozen.contains($0) && previous[$0].bitPattern != before[$0].bitPattern }
            XCTAssertEqual(lost.count, 0, "step \(step): previous values not kept, first at \(lost.first ?? -1)")
            XCTAssertEqual((0..<n).map { adam.m[$0] }, m)
            XCTAssertEqual((0..<n).map { adam.v[$0] }, v)
        }
    }
}
