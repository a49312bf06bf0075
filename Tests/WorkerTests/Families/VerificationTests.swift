import Foundation
import Shared
import Worker
import XCTest

/// The verify-to-classify pieces around the network: equal error rate, the classical
/// classifiers and the episodes.
final class VerificationTests: XCTestCase {
    // MARK: - Equal error rate

    func testEqualErrorRateOfHandMadeScores() {
        // Targets 0.9, 0.8, 0.4; non-targets 0.7, 0.3, 0.2. Accepting scores ≥ 0.7 rejects one target
        // (0.4) and accepts one non-target (0.7): FAR = FRR = 1/3.
        var r = EqualErrorRate.compute(scores: [0.9, 0.7, 0.8, 0.3, 0.4, 0.2], same: [true, false, true, false, true, false])
        XCTAssertEqual(r.eer, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.threshold, 0.7, accuracy: 1e-12)
        XCTAssertEqual(r.targets, 3)
        // Perfect separation: 0. Every non-target above every target: 1.
        r = EqualErrorRate.compute(scores: [0.9, 0.8, 0.2, 0.1], same: [true, true, false, false])
        XCTAssertEqual(r.eer, 0)
        r = EqualErrorRate.compute(scores: [0.1, 0.2, 0.8, 0.9], same: [true, true, false, false])
        XCTAssertEqual(r.eer, 1)
        // Uninformative (all scores equal): 0.5 by interpolation between (FAR 0, FRR 1) and (1, 0).
        r = EqualErrorRate.compute(scores: [0.5, 0.5, 0.5, 0.5], same: [true, false, true, false])
        XCTAssertEqual(r.eer, 0.5, accuracy: 1e-12)
        // Crossing between two operating points: targets 0.9, 0.6; non-targets 0.8, 0.1, 0.05, 0.01.
        // Thresholds ≥ 0.9: FAR 0, FRR 1/2; ≥ 0.8: FAR 1/4, FRR 1/2; ≥ 0.6: FAR 1/4, FRR 0.
        // Between the last two, FRR − FAR goes from 1/4 to −1/4: EER = 1/4.
        r = EqualErrorRate.compute(scores: [0.9, 0.6, 0.8, 0.1, 0.05, 0.01], same: [true, true, false, false, false, false])
        XCTAssertEqual(r.eer, 0.25, accuracy: 1e-12)
        // No trial of one kind: undefined.
        XCTAssertTrue(EqualErrorRate.compute(scores: [1, 2], same: [true, true]).eer.isNaN)
    }

    func testTrialsAreEveryPairByCosine() {
        let t = EqualErrorRate.trials(vectors: [[1, 0], [2, 0], [0, 3]], labels: [0, 0, 1])
        XCTAssertEqual(t.scores, [1, 0, 0])
        XCTAssertEqual(t.same, [true, false, false])
    }

    // MARK: - Classifiers

    /// Three separable clusters: logistic regression classifies all, and its parameters are a
    /// stationary point of the regularised objective (checked by central differences of an
    /// objective written out here, independently of the fitting code).
    func testLogisticRegressionOnSeparableData() {
        var rng = SeededGenerator(seed: 2)
        let centres: [[Double]] = [[4, 0, 1], [-4, 1, 0], [0, -5, 2]]
        var x: [[Double]] = [], y: [Int] = []
        for i in 0..<60 {
            let c = i % 3
            x.append(centres[c].map { $0 + rng.normal() })
            y.append(c)
        }
        let model = LogisticRegression.fit(x, labels: y, classes: 3)
        XCTAssertEqual(zip(x, y).filter { model.predict($0) == $1 }.count, 60)
        XCTAssertLessThan(model.gradientNorm, 1e-9)
        let lam = 1.0 / 60, p = 4
        func objective(_ th: [Double]) -> Double {
            var f = 0.0
            for (v, label) in zip(x, y) {
                let z = (0..<3).map { (v[$0] - model.mean[$0]) / model.std[$0] } + [1]
                let logits = (0..<3).map { c in (0..<p).reduce(0.0) { $0 + th[c * p + $1] * z[$1] } }
                let m = logits.max()!
                f += m + log(logits.reduce(0) { $0 + exp($1 - m) }) - logits[label]
            }
            f /= 60
            for c in 0..<3 { for j in 0..<3 { f += 0.5 * lam * th[c * p + j] * th[c * p + j] } }
            return f
        }
        for i in model.theta.indices {
            var a = model.theta, b = model.theta
            a[i] += 1e-5; b[i] -= 1e-5
            XCTAssertEqual((objective(a) - objective(b)) / 2e-5, 0, accuracy: 1e-6, "parameter \(i)")
        }
        let probs = model.probabilities([4, 0, 1])
        XCTAssertEqual(probs.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertGreaterThan(probs[0], 0.9)
    }

    func testNearestCentroidByAngle() {
        // Class means of the unit vectors: (1, 0) and (0, 1); lengths do not matter.
        let nc = NearestCentroid.fit([[10, 0], [1, 0.001], [0, 5], [0.001, 2]], labels: [0, 0, 1, 1], classes: 2)
        XCTAssertEqual(nc.predict([3, 1]), 0)
        XCTAssertEqual(nc.predict([0.1, 100]), 1)
        XCTAssertEqual(nc.predict([-1, 0.5]), 1)
    }

    // MARK: - Episodes

    func testEpisodesAreSeededByStepAndRank() {
        // 3 classes; class 2 has only two files, so with M = 3 only classes 0 and 1 are usable.
        var files: [(id: Int, label: Int, segments: [Int])] = []
        for f in 0..<14 { files.append((f, f < 6 ? 0 : f < 12 ? 1 : 2, [100 * f, 100 * f + 1, 100 * f + 2])) }
        files.append((99, 0, []))   // no candidate segment: never drawn
        let s = EpisodeSampler(files: files, classCount: 3, classesPerEpisode: 2, utterancesPerClass: 3)
        XCTAssertEqual(s.usableClasses, [0, 1])
        XCTAssertNil(s.problem(names: ["a", "b", "c"]))
        let e = s.episode(seed: 1, step: 4, rank: 0)
        XCTAssertEqual(e, s.episode(seed: 1, step: 4, rank: 0), "same seed, step and rank: same episode")
        XCTAssertNotEqual(e, s.episode(seed: 1, step: 4, rank: 1))
        XCTAssertNotEqual(e, s.episode(seed: 1, step: 5, rank: 0))
        XCTAssertNotEqual(e, s.episode(seed: 2, step: 4, rank: 0))
        XCTAssertEqual(Set(e.classes), [0, 1])
        XCTAssertEqual(e.files.count, 6)
        for j in 0..<2 {
            let chunk = Array(e.files[(j * 3) ..< (j * 3 + 3)])
            XCTAssertEqual(Set(chunk).count, 3, "M distinct files per class")
            for f in chunk { XCTAssertEqual(files.first { $0.id == f }!.label, e.classes[j]) }
        }
        for (f, seg) in zip(e.files, e.segments) { XCTAssertEqual(seg / 100, f) }
        XCTAssertEqual(e.labels, [e.classes[0], e.classes[0], e.classes[0], e.classes[1], e.classes[1], e.classes[1]])
        // Over many steps every usable file is drawn.
        var seen = Set<Int>()
        for step in 0..<200 { seen.formUnion(s.episode(seed: 1, step: step, rank: 0).files) }
        XCTAssertEqual(seen, Set(0..<12))
        // Asking for three classes with three files each cannot work, and says why.
        let three = EpisodeSampler(files: files, classCount: 3, classesPerEpisode: 3, utterancesPerClass: 3)
        XCTAssertTrue(three.problem(names: ["a", "b", "c"])?.contains("c 2") == true)
    }
}
