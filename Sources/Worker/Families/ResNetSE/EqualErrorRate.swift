import Foundation

/// Equal error rate of a verifier: the operating point where the false-acceptance rate (a
/// different-emotion trial scored at or above the threshold) equals the false-rejection rate (a
/// same-emotion trial scored below it).
public enum EqualErrorRate {
    public struct Result: Equatable, Sendable {
        public var eer: Double
        /// The score at the crossing (trials scoring at least this are accepted).
        public var threshold: Double
        public var targets: Int
        public var nonTargets: Int
    }

    /// EER of trials with `scores` (higher: more alike) and `same` (true: a target trial).
    ///
    /// The threshold sweeps every distinct score from high to low (equal scores move together);
    /// between the last point with FRR > FAR and the first with FAR ≥ FRR both rates are
    /// interpolated linearly, and the EER is their common value there.
    public static func compute(scores: [Double], same: [Bool]) -> Result {
        precondition(scores.count == same.count)
        let targets = same.filter { $0 }.count, nonTargets = same.count - targets
        guard targets > 0, nonTargets > 0 else { return Result(eer: .nan, threshold: .nan, targets: targets, nonTargets: nonTargets) }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        // Point k: threshold between group k−1 and k; starts with nothing accepted (FAR 0, FRR 1).
        var far = [0.0], frr = [1.0], thresholds = [Double.infinity]
        var accTargets = 0, accNon = 0
        var i = 0
        while i < order.count {
            let s = scores[order[i]]
            while i < order.count && scores[order[i]] == s {
                if same[order[i]] { accTargets += 1 } else { accNon += 1 }
                i += 1
            }
            far.append(Double(accNon) / Double(nonTargets))
            frr.append(Double(targets - accTargets) / Double(targets))
            thresholds.append(s)
        }
        let k = far.indices.first { far[$0] >= frr[$0] }!
        if k == 0 { return Result(eer: far[0], threshold: thresholds[0], targets: targets, nonTargets: nonTargets) }
        let a = frr[k - 1] - far[k - 1], b = far[k] - frr[k]
        let t = a + b > 0 ? a / (a + b) : 0
        let eer = far[k - 1] + t * (far[k] - far[k - 1])
        let lo = thresholds[k - 1].isFinite ? thresholds[k - 1] : thresholds[k]
        return Result(eer: eer, threshold: lo + t * (thresholds[k] - lo), targets: targets, nonTargets: nonTargets)
    }

    /// Every pair (i < j) of `vectors` as a trial: cosine score, target when the labels agree.
    public static func trials(vectors: [[Double]], labels: [Int]) -> (scores: [Double], same: [Bool]) {
        let unit = vectors.map(normalized)
        var scores: [Double] = [], same: [Bool] = []
        scores.reserveCapacity(vectors.count * (vectors.count - 1) / 2)
        for i in 0..<unit.count {
            for j in (i + 1)..<max(i + 1, unit.count) {
                var dot = 0.0
                for t in 0..<unit[i].count { dot += unit[i][t] * unit[j][t] }
                scores.append(dot)
                same.append(labels[i] == labels[j])
            }
        }
        return (scores, same)
    }
}
