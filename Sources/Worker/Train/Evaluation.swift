import Foundation
import Shared

/// Segment-level and file-level results of a model on a set of files.
///
/// File-level prediction, as in the paper: the mean of the file's segment probabilities.
public struct EvaluationResult: Codable, Equatable, Sendable {
    public var segments: ClassificationReport
    public var files: ClassificationReport
    public var loss: Double
    /// Per file: id, true label, mean probabilities (for reports and explanations).
    public var filePredictions: [FilePrediction]

    public struct FilePrediction: Codable, Equatable, Sendable {
        public var file: Int
        public var label: Int
        public var probabilities: [Double]
        public var segments: Int
        public var predicted: Int { probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 0 }
    }

    public var summary: String {
        String(format: "segments WA %.4f UA %.4f | files WA %.4f UA %.4f F1 %.4f | loss %.4f",
               segments.weightedAccuracy, segments.unweightedAccuracy, files.weightedAccuracy, files.unweightedAccuracy,
               files.macroF1, loss)
    }
}

public enum Evaluator {
    /// Collective: every rank evaluates `localFiles` (its share) and rank 0 returns the result for
    /// all files (other ranks get nil). `useAll`: every segment, else only GDS-kept ones.
    public static func run(_ net: Network<Float>, store: FeatureStore, localFiles: [Int], useAll: Bool,
                           world: Communicator, batch: Int = 128, onBatch: (() -> Void)? = nil) throws -> EvaluationResult? {
        let classes = store.labels.count
        let per = store.valuesPerSegment
        let reader = store.makeReader(cacheBlocks: 4)
        var x = [Float](repeating: 0, count: batch * per)
        var rows: [Double] = []   // per file: id, label, count, Σp…
        var segConfusion = [Int64](repeating: 0, count: classes * classes)
        var lossSum = 0.0, lossCount = 0.0
        // Segments of the local files, in file order.
        var queue: [(file: Int, seg: Int)] = []
        for f in localFiles {
            for s in store.files[f].segments where useAll || store.segment(s).kept { queue.append((f, s)) }
        }
        var fileSums: [Int: [Double]] = [:]
        var fileCounts: [Int: Int] = [:]
        var start = 0
        while start < queue.count {
            let n = min(batch, queue.count - start)
            try x.withUnsafeMutableBufferPointer { xb in
                for i in 0..<n { try reader.read(queue[start + i].seg, into: xb.baseAddress! + i * per) }
            }
            let logits = x.withUnsafeBufferPointer { net.forward($0.baseAddress!, batch: n, bn: .moving) }
            let probs = softmaxRows(logits, batch: n, classes: classes)
            let labels = (0..<n).map { store.files[queue[start + $0].file].labelIndex }
            let losses = SoftmaxCrossEntropy.compute(logits, labels: labels, classes: classes, globalBatch: 1, dlogits: nil)
            for i in 0..<n {
                let f = queue[start + i].file
                let p = probs[i]
                let pred = p.indices.max { p[$0] < p[$1] }!
                segConfusion[labels[i] * classes + pred] += 1
                lossSum += losses[i]
                lossCount += 1
                var acc = fileSums[f] ?? [Double](repeating: 0, count: classes)
                for c in 0..<classes { acc[c] += p[c] }
                fileSums[f] = acc
                fileCounts[f, default: 0] += 1
            }
            start += n
            onBatch?()
        }
        for f in localFiles where fileCounts[f] != nil {
            rows += [Double(f), Double(store.files[f].labelIndex), Double(fileCounts[f]!)] + fileSums[f]!
        }
        world.allreduce(&segConfusion, .sum)
        var loss = [lossSum, lossCount]
        world.allreduce(&loss, .sum)
        guard let gathered = world.gather(rows, root: 0) else { return nil }
        var predictions: [EvaluationResult.FilePrediction] = []
        let width = 3 + classes
        for part in gathered {
            for k in 0..<(part.count / width) {
                let r = Array(part[(k * width) ..< ((k + 1) * width)])
                let count = r[2]
                predictions.append(.init(file: Int(r[0]), label: Int(r[1]), probabilities: r[3...].map { $0 / count }, segments: Int(count)))
            }
        }
        predictions.sort { $0.file < $1.file }
        var seg = ClassificationReport(labels: store.labels)
        for t in 0..<classes { for p in 0..<classes { seg.confusion[t][p] = Int(segConfusion[t * classes + p]) } }
        let files = ClassificationReport(labels: store.labels, truth: predictions.map(\.label), predicted: predictions.map(\.predicted))
        return EvaluationResult(segments: seg, files: files, loss: loss[1] > 0 ? loss[0] / loss[1] : 0, filePredictions: predictions)
    }
}
