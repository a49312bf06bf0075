import Foundation
import Shared

/// Permutation feature importance (Breiman 2001): how much the unweighted accuracy on the test
/// files drops when one input feature's column is shuffled among them, which breaks its link with
/// the emotion while keeping its distribution.
public enum PermutationImportance {
    /// - rows: the test files' feature vectors; labels: their classes.
    /// - columns: the sets of columns permuted together, with their names (single features, or groups).
    /// - predict: the model's predicted class for each row of a matrix.
    /// The permutation of repeat r of set `name` comes from the stream ("importance", name, r) of
    /// `seed`. Result sorted by mean drop, largest first (ties by name).
    public static func compute(rows: [[Double]], labels: [Int], classNames: [String], columns: [(name: String, indices: [Int])],
                               repeats: Int, seed: UInt64, predict: ([[Double]]) -> [Int]) -> [FeatureImportance] {
        precondition(repeats >= 1 && rows.count == labels.count)
        func ua(_ m: [[Double]]) -> Double {
            ClassificationReport(labels: classNames, truth: labels, predicted: predict(m)).unweightedAccuracy
        }
        let base = ua(rows)
        var out: [FeatureImportance] = []
        for (name, indices) in columns {
            var drops: [Double] = []
            for r in 0..<repeats {
                var rng = SeededGenerator(seed: seed, stream: "importance/\(name)/\(r)")
                var order = Array(rows.indices)
                order.seededShuffle(using: &rng)
                var m = rows
                for (i, src) in order.enumerated() { for j in indices { m[i][j] = rows[src][j] } }
                drops.append(base - ua(m))
            }
            let mean = drops.reduce(0, +) / Double(drops.count)
            let sd = drops.count > 1 ? (drops.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(drops.count - 1)).squareRoot() : 0
            out.append(FeatureImportance(feature: name, drop: mean, std: sd))
        }
        return out.sorted { $0.drop != $1.drop ? $0.drop > $1.drop : $0.feature < $1.feature }
    }

    /// A ranked table: rank, feature, mean drop, standard deviation.
    public static func csv(_ items: [FeatureImportance]) -> String {
        var s = "rank,feature,ua_drop,std\n"
        for (i, f) in items.enumerated() { s += "\(i + 1),\(f.feature),\(String(format: "%.6f", f.drop)),\(String(format: "%.6f", f.std))\n" }
        return s
    }

    /// The `top` largest drops as a bar chart.
    public static func svg(_ items: [FeatureImportance], top: Int = 25, title: String) -> String {
        let shown = Array(items.prefix(top))
        return Chart.groupedBars(categories: shown.map(\.feature), series: [BarSeries(name: "UA drop", values: shown.map(\.drop))],
                                 title: title, yLabel: "drop in UA when permuted", width: 900, height: 420)
    }
}
