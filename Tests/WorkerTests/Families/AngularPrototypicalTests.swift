import Foundation
import Shared
import Worker
import XCTest

/// The angular prototypical loss against a case worked by hand, and against finite differences.
final class AngularPrototypicalTests: XCTestCase {
    /// N = 2 emotions × M = 2 utterances in 2-D; w = 10, b = −5.
    ///
    ///     class 0: query q0 = (1, 0), prototype c0 = (0.6, 0.8)
    ///     class 1: query q1 = (0, 2), prototype c1 = (1, 1)
    ///     cos(q0, c0) = 0.6, cos(q0, c1) = 1/√2, cos(q1, c0) = 1.6/2 = 0.8, cos(q1, c1) = 2/(2√2) = 1/√2
    ///     S = [[1, 2.0710678], [3, 2.0710678]]
    ///     L = ½[(ln(e¹ + e^2.0711) − 1) + (ln(e³ + e^2.0711) − 2.0711)] = ½(1.3147 + 1.3128) = 1.3137582
    ///     softmax rows: [0.2552, 0.7448], [0.7169, 0.2831]; dS = (P − I)/2
    ///     dL/dw = Σ dS·cos = ½[(−0.7448)(0.6) + 0.7448/√2 + 0.7169(0.8) − 0.7169/√2] = 0.0731822
    ///     dL/db = Σ dS = 0 (each row of P − I sums to 0); neither query is closest to its own prototype.
    func testHandWorkedEpisode() {
        let e: [Double] = [1, 0, 0.6, 0.8, 0, 2, 1, 1]
        let r = AngularPrototypical.compute(e, classes: 2, utterances: 2, dim: 2, scale: 10, bias: -5)
        XCTAssertEqual(r.scores[0], 1, accuracy: 1e-12)
        XCTAssertEqual(r.scores[1], 10 / 2.0.squareRoot() - 5, accuracy: 1e-12)
        XCTAssertEqual(r.scores[2], 3, accuracy: 1e-12)
        XCTAssertEqual(r.loss, 1.3137581574085153, accuracy: 1e-12)
        XCTAssertEqual(r.dScale, 0.07318221298927108, accuracy: 1e-12)
        XCTAssertEqual(r.dBias, 0, accuracy: 1e-15)
        XCTAssertEqual(r.accuracy, 0)
        // Scaling a query or a prototype does not change a cosine: the gradient is orthogonal to it.
        XCTAssertEqual(r.dEmbeddings[0] * 1 + r.dEmbeddings[1] * 0, 0, accuracy: 1e-12)
        XCTAssertEqual(r.dEmbeddings[4] * 0 + r.dEmbeddings[5] * 2, 0, accuracy: 1e-12)

        // Swapping the classes' utterances makes both queries right: accuracy 1, lower loss.
        let good = AngularPrototypical.compute([1, 0, 0.9, 0.1, 0, 2, 0.1, 1], classes: 2, utterances: 2, dim: 2, scale: 10, bias: -5)
        XCTAssertEqual(good.accuracy, 1)
        XCTAssertLessThan(good.loss, r.loss)
    }

    func testPrototypeIsTheMeanOfTheOtherUtterances() {
        // M = 3: the prototype of class 0 is mean((2, 0), (0, 2)) = (1, 1) — the same as one utterance (1, 1) twice.
        let a = AngularPrototypical.compute([1, 0, 2, 0, 0, 2, 0, 1, 3, 1, -1, 2], classes: 2, utterances: 3, dim: 2, scale: 5, bias: 1)
        let b = AngularPrototypical.compute([1, 0, 1, 1, 1, 1, 0, 1, 3, 1, -1, 2], classes: 2, utterances: 3, dim: 2, scale: 5, bias: 1)
        XCTAssertEqual(a.loss, b.loss, accuracy: 1e-12)
        XCTAssertEqual(a.scores, b.scores)
    }

    func testGradientsMatchFiniteDifferences() {
        var rng = SeededGenerator(seed: 7)
        let (n, m, d) = (3, 4, 5)
        let e = (0..<(n * m * d)).map { _ in rng.normal() }
        let (w, b) = (7.0, -2.0)
        let r = AngularPrototypical.compute(e, classes: n, utterances: m, dim: d, scale: w, bias: b)
        let h = 1e-6
        var worst = 0.0
        for i in e.indices {
            var p = e, q = e
            p[i] += h; q[i] -= h
            let num = (AngularPrototypical.compute(p, classes: n, utterances: m, dim: d, scale: w, bias: b).loss
                - AngularPrototypical.compute(q, classes: n, utterances: m, dim: d, scale: w, bias: b).loss) / (2 * h)
            worst = max(worst, abs(num - r.dEmbeddings[i]))
        }
        XCTAssertLessThan(worst, 1e-8)
        let dw = (AngularPrototypical.compute(e, classes: n, utterances: m, dim: d, scale: w + h, bias: b).loss
            - AngularPrototypical.compute(e, classes: n, utterances: m, dim: d, scale: w - h, bias: b).loss) / (2 * h)
        let db = (AngularPrototypical.compute(e, classes: n, utterances: m, dim: d, scale: w, bias: b + h).loss
            - AngularPrototypical.compute(e, classes: n, utterances: m, dim: d, scale: w, bias: b - h).loss) / (2 * h)
        XCTAssertEqual(r.dScale, dw, accuracy: 1e-8)
        XCTAssertEqual(r.dBias, db, accuracy: 1e-8)
    }

    func testScaleIsClampedFromBelow() {
        let e: [Double] = [1, 0, 0.6, 0.8, 0, 2, 1, 1]
        let r = AngularPrototypical.compute(e, classes: 2, utterances: 2, dim: 2, scale: -3, bias: 0)
        // w < 1e-6 acts as 1e-6: the scores are the bias (plus ~1e-6·cos) and w gets no gradient.
        for s in r.scores { XCTAssertEqual(s, 0, accuracy: 1e-5) }
        XCTAssertEqual(r.dScale, 0)
        XCTAssertEqual(r.loss, Foundation.log(2), accuracy: 1e-5)
    }
}
