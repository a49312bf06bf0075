import Foundation

/// The angular prototypical loss (Chung et al. 2020, "In defence of metric learning for speaker
/// recognition"), here with emotions in place of speakers.
///
/// An episode holds N classes × M utterances, class-major: row j·M + i is utterance i of class j.
/// Utterance 0 of each class is its query q_j; the other M − 1 form its prototype
/// c_j = mean_{i≥1} e_{j,i}. With cos_jk the cosine between q_j and c_k and a learned scale w
/// (clamped at 1e-6 from below, as in the reference implementation) and bias b,
///
///     S_jk = w·cos_jk + b,        L = (1/N) Σ_j [ log Σ_k exp S_jk − S_jj ],
///
/// a cross-entropy that asks every query to be closest to its own class's prototype.
public enum AngularPrototypical {
    public static let minimumScale = 1e-6

    public struct Result: Sendable {
        public var loss: Double
        /// Fraction of queries whose own prototype scores highest.
        public var accuracy: Double
        /// The N × N scores S (row j: query j).
        public var scores: [Double]
        /// dL/d(embeddings), (N·M, D).
        public var dEmbeddings: [Double]
        public var dScale: Double
        public var dBias: Double
    }

    /// Loss and gradients of one episode. embeddings: (N·M, D), class-major. Needs M ≥ 2, N ≥ 2.
    public static func compute(_ e: [Double], classes n: Int, utterances m: Int, dim d: Int, scale: Double, bias: Double) -> Result {
        precondition(n >= 2 && m >= 2 && e.count == n * m * d, "an episode needs N ≥ 2 classes × M ≥ 2 utterances")
        let w = max(scale, minimumScale)
        var q = [Double](repeating: 0, count: n * d), c = q
        for j in 0..<n {
            for t in 0..<d { q[j * d + t] = e[(j * m) * d + t] }
            for i in 1..<m { for t in 0..<d { c[j * d + t] += e[(j * m + i) * d + t] } }
            for t in 0..<d { c[j * d + t] /= Double(m - 1) }
        }
        func norm(_ v: [Double], _ j: Int) -> Double {
            var s = 0.0
            for t in 0..<d { s += v[j * d + t] * v[j * d + t] }
            return max(s.squareRoot(), 1e-12)
        }
        let qn = (0..<n).map { norm(q, $0) }, cn = (0..<n).map { norm(c, $0) }
        var cosines = [Double](repeating: 0, count: n * n), scores = cosines
        for j in 0..<n {
            for k in 0..<n {
                var dot = 0.0
                for t in 0..<d { dot += q[j * d + t] * c[k * d + t] }
                cosines[j * n + k] = dot / (qn[j] * cn[k])
                scores[j * n + k] = w * cosines[j * n + k] + bias
            }
        }
        var loss = 0.0, correct = 0
        var dS = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            let row = scores[(j * n) ..< ((j + 1) * n)]
            let mx = row.max()!
            let lse = mx + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - mx) })
            loss += lse - scores[j * n + j]
            if (0..<n).allSatisfy({ $0 == j || scores[j * n + $0] < scores[j * n + j] }) { correct += 1 }
            for k in 0..<n { dS[j * n + k] = (Foundation.exp(scores[j * n + k] - lse) - (k == j ? 1 : 0)) / Double(n) }
        }
        loss /= Double(n)
        var dScale = 0.0, dBias = 0.0
        for i in 0..<(n * n) { dScale += dS[i] * cosines[i]; dBias += dS[i] }
        if scale < minimumScale { dScale = 0 }
        // d cos(u, v)/du = v/(|u||v|) − cos·u/|u|².
        var dq = [Double](repeating: 0, count: n * d), dc = dq
        for j in 0..<n {
            for k in 0..<n {
                let g = w * dS[j * n + k], cs = cosines[j * n + k]
                if g == 0 { continue }
                let a = g / (qn[j] * cn[k]), bq = g * cs / (qn[j] * qn[j]), bc = g * cs / (cn[k] * cn[k])
                for t in 0..<d {
                    dq[j * d + t] += a * c[k * d + t] - bq * q[j * d + t]
                    dc[k * d + t] += a * q[j * d + t] - bc * c[k * d + t]
                }
            }
        }
        var dE = [Double](repeating: 0, count: e.count)
        for j in 0..<n {
            for t in 0..<d { dE[(j * m) * d + t] = dq[j * d + t] }
            for i in 1..<m { for t in 0..<d { dE[(j * m + i) * d + t] = dc[j * d + t] / Double(m - 1) } }
        }
        return Result(loss: loss, accuracy: Double(correct) / Double(n), scores: scores, dEmbeddings: dE, dScale: dScale, dBias: dBias)
    }
}
