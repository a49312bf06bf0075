import Foundation

/// Classification results: confusion matrix and the figures SER papers report.
///
/// Weighted accuracy (WA) is plain accuracy (each sample counts once, so frequent classes weigh
/// more); unweighted accuracy (UA) is the mean of per-class recalls (balanced accuracy), what
/// speaker-independent SER benchmarks such as EmoBox compare on.
public struct ClassificationReport: Codable, Equatable, Sendable {
    public var labels: [String]
    /// confusion[true][predicted]
    public var confusion: [[Int]]

    public init(labels: [String]) {
        self.labels = labels
        confusion = Array(repeating: Array(repeating: 0, count: labels.count), count: labels.count)
    }

    public init(labels: [String], truth: [Int], predicted: [Int]) {
        self.init(labels: labels)
        for (t, p) in zip(truth, predicted) { confusion[t][p] += 1 }
    }

    public mutating func add(truth: Int, predicted: Int) { confusion[truth][predicted] += 1 }

    public var total: Int { confusion.reduce(0) { $0 + $1.reduce(0, +) } }
    public var correct: Int { labels.indices.reduce(0) { $0 + confusion[$1][$1] } }
    public func support(_ c: Int) -> Int { confusion[c].reduce(0, +) }
    public func predictedCount(_ c: Int) -> Int { labels.indices.reduce(0) { $0 + confusion[$1][c] } }

    /// Recall of class c (nil when the class has no samples).
    public func recall(_ c: Int) -> Double? {
        let s = support(c)
        return s == 0 ? nil : Double(confusion[c][c]) / Double(s)
    }

    /// Precision of class c (0 when nothing was predicted as c but the class exists).
    public func precision(_ c: Int) -> Double? {
        let p = predictedCount(c)
        if p == 0 { return support(c) == 0 ? nil : 0 }
        return Double(confusion[c][c]) / Double(p)
    }

    public func f1(_ c: Int) -> Double? {
        guard let p = precision(c), let r = recall(c) else { return nil }
        return p + r == 0 ? 0 : 2 * p * r / (p + r)
    }

    /// Weighted accuracy: correct / total.
    public var weightedAccuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
    public var accuracy: Double { weightedAccuracy }

    /// Unweighted accuracy: mean recall over classes present in the truth.
    public var unweightedAccuracy: Double {
        let r = labels.indices.compactMap { recall($0) }
        return r.isEmpty ? 0 : r.reduce(0, +) / Double(r.count)
    }

    /// Macro-averaged F1 over classes present.
    public var macroF1: Double {
        let f = labels.indices.compactMap { f1($0) }
        return f.isEmpty ? 0 : f.reduce(0, +) / Double(f.count)
    }

    public var macroRecall: Double { unweightedAccuracy }

    /// Per-class rows as a readable table.
    public var table: String {
        var lines = ["class        precision  recall  F1     support"]
        for (c, name) in labels.enumerated() {
            func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "  -  " }
            lines.append(name.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + f(precision(c)) + "      " + f(recall(c)) + "   " + f(f1(c)) + "  " + String(support(c)))
        }
        lines.append(String(format: "WA %.4f  UA %.4f  macro-F1 %.4f  (%d samples)", weightedAccuracy, unweightedAccuracy, macroF1, total))
        return lines.joined(separator: "\n")
    }

    /// Confusion matrix as text (rows: truth, columns: prediction).
    public var confusionTable: String {
        let w = max(8, labels.map(\.count).max() ?? 0)
        var lines = ["".padding(toLength: w, withPad: " ", startingAt: 0) + labels.map { $0.prefix(w).padding(toLength: w, withPad: " ", startingAt: 0) }.joined(separator: " ")]
        for (i, name) in labels.enumerated() {
            lines.append(name.padding(toLength: w, withPad: " ", startingAt: 0) + confusion[i].map { String($0).padding(toLength: w, withPad: " ", startingAt: 0) }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}
