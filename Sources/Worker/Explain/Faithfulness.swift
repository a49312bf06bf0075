import Foundation
import Shared

/// Are the explanations faithful to the model? Two checks that do not trust the map's looks.
///
/// **Deletion and insertion** (Petsiuk et al. 2018, RISE): the patch is cut into cells
/// (`cellFrames` × `cellBands`, default 8 × 8: 96 cells on a 96 × 64 patch), each cell scored by
/// the mean attribution inside it. Deletion fills cells with the baseline, most important first,
/// and follows the target class's probability; insertion starts from the all-baseline patch and
/// puts cells back in the same order. `steps` + 1 points per curve (after ⌊s·cells/steps⌋ cells,
/// s = 0…steps), and the area under each curve by the trapezoid rule over x ∈ [0, 1]. A faithful
/// map makes the deletion curve fall fast (small area) and the insertion curve rise fast (large
/// area). The same curves for a random cell order, seeded by the file (so every method of a file
/// is compared with the same random orders), give the baseline a method has to beat.
///
/// **Pointing game** (Zhang et al. 2016), on corpora whose generator records where the class cues
/// lie: a hit when the utterance map's maximum falls inside a cue box. Its chance level is the
/// share of the map's cells that lie inside a cue box.
public enum Faithfulness {
    public struct Settings: Codable, Hashable, Sendable {
        public var cellFrames = 8, cellBands = 8
        public var steps = 16
        public var randomOrders = 1
        public init() {}
    }

    /// Cell of every patch position (frame-major), and the number of cells.
    public static func cells(frames: Int, bands: Int, settings s: Settings) -> (labels: [Int32], count: Int) {
        let rows = (frames + s.cellFrames - 1) / s.cellFrames, cols = (bands + s.cellBands - 1) / s.cellBands
        var labels = [Int32](repeating: 0, count: frames * bands)
        for f in 0..<frames { for b in 0..<bands { labels[f * bands + b] = Int32((f / s.cellFrames) * cols + b / s.cellBands) } }
        return (labels, rows * cols)
    }

    /// Cells from most to least important (mean attribution; ties keep cell order).
    public static func order(map: UnsafePointer<Float>, labels: [Int32], cells: Int) -> [Int] {
        var sum = [Double](repeating: 0, count: cells), n = [Int](repeating: 0, count: cells)
        for i in 0..<labels.count {
            sum[Int(labels[i])] += Double(map[i])
            n[Int(labels[i])] += 1
        }
        let score = (0..<cells).map { sum[$0] / Double(max(1, n[$0])) }
        return (0..<cells).sorted { score[$0] > score[$1] || (score[$0] == score[$1] && $0 < $1) }
    }

    /// Area under y sampled at equal steps over [0, 1] (trapezoid rule).
    public static func auc(_ y: [Double]) -> Double {
        guard y.count > 1 else { return y.first ?? 0 }
        var s = 0.0
        for i in 1..<y.count { s += (y[i - 1] + y[i]) / 2 }
        return s / Double(y.count - 1)
    }

    /// Deletion and insertion curves of one patch for each order (order k: curves k).
    public struct Curves: Codable, Sendable {
        public var deletion: [[Double]]
        public var insertion: [[Double]]
    }

    /// Curves for several cell orders of several patches, all through the classifier in batches.
    /// `orders[p]` are the orders to follow for patch p.
    public static func curves(_ classifier: PatchClassifier, patches: UnsafePointer<Float>, count: Int, target: Int,
                              orders: [[[Int]]], labels: [Int32], cells: Int, settings s: Settings, baseline: Baseline,
                              poll: @escaping () -> Void = {}) throws -> [Curves] {
        let per = classifier.frames * classifier.bands
        precondition(orders.count == count && labels.count == per)
        let points = s.steps + 1
        let fills = (0..<count).map { baseline.fill(patches + $0 * per, count: per) }
        // Copy layout: patch p, order k, curve (0 deletion, 1 insertion), step.
        let perPatch = orders.map { $0.count * 2 * points }
        var offsets = [0]
        for c in perPatch { offsets.append(offsets.last! + c) }
        // rank[p][k][cell] = position of the cell in order k.
        let ranks: [[[Int]]] = orders.map { os in
            os.map { o in
                precondition(o.count == cells, "an order of \(o.count) cells for \(cells)")
                var r = [Int](repeating: 0, count: cells)
                for (i, c) in o.enumerated() { r[c] = i }
                return r
            }
        }
        var runner = BatchRunner(classifier, poll: poll)
        let probs = try runner.run(count: offsets.last!) { i, dst in
            var p = 0
            while offsets[p + 1] <= i { p += 1 }
            let local = i - offsets[p]
            let k = local / (2 * points), curve = (local / points) % 2, step = local % points
            let removed = step * cells / s.steps
            let rank = ranks[p][k]
            let src = patches + p * per, fill = fills[p]
            for cell in 0..<per {
                let early = rank[Int(labels[cell])] < removed
                // Deletion hides the first `removed` cells; insertion shows only them.
                let hidden = curve == 0 ? early : !early
                dst[cell] = hidden ? fill : src[cell]
            }
        }
        let classes = classifier.classes
        return (0..<count).map { p in
            var c = Curves(deletion: [], insertion: [])
            for k in 0..<orders[p].count {
                let base = offsets[p] + k * 2 * points
                c.deletion.append((0..<points).map { probs[(base + $0) * classes + target] })
                c.insertion.append((0..<points).map { probs[(base + points + $0) * classes + target] })
            }
            return c
        }
    }

    /// A file's faithfulness figures: mean curves over its patches and their areas.
    public struct FileScores: Codable, Sendable, Equatable {
        public var deletion: [Double]
        public var insertion: [Double]
        public var randomDeletion: [Double]
        public var randomInsertion: [Double]
        public var deletionAUC: Double
        public var insertionAUC: Double
        public var randomDeletionAUC: Double
        public var randomInsertionAUC: Double

        public init(deletion: [Double], insertion: [Double], randomDeletion: [Double], randomInsertion: [Double],
                    deletionAUC: Double, insertionAUC: Double, randomDeletionAUC: Double, randomInsertionAUC: Double) {
            self.deletion = deletion
            self.insertion = insertion
            self.randomDeletion = randomDeletion
            self.randomInsertion = randomInsertion
            self.deletionAUC = deletionAUC
            self.insertionAUC = insertionAUC
            self.randomDeletionAUC = randomDeletionAUC
            self.randomInsertionAUC = randomInsertionAUC
        }
    }

    /// Curves of the method's order (order 0) and of the random orders (1…), averaged over patches.
    public static func fileScores(_ curves: [Curves]) -> FileScores {
        func mean(_ rows: [[Double]]) -> [Double] {
            guard let first = rows.first else { return [] }
            return (0..<first.count).map { i in rows.reduce(0) { $0 + $1[i] } / Double(rows.count) }
        }
        let del = mean(curves.map { $0.deletion[0] }), ins = mean(curves.map { $0.insertion[0] })
        let rdel = mean(curves.flatMap { $0.deletion.dropFirst() }), rins = mean(curves.flatMap { $0.insertion.dropFirst() })
        return FileScores(deletion: del, insertion: ins, randomDeletion: rdel, randomInsertion: rins,
                          deletionAUC: auc(del), insertionAUC: auc(ins), randomDeletionAUC: auc(rdel), randomInsertionAUC: auc(rins))
    }

    // MARK: - Pointing game

    public struct Pointing: Codable, Sendable, Equatable {
        public var hit: Bool
        /// Where the map peaks: frame and band, and as seconds (frame centre) and Hz (band centre).
        public var frame: Int, band: Int
        public var seconds: Double, hertz: Double
        /// Share of the map's cells inside a cue box (the hit rate of a random point).
        public var chance: Double
    }

    /// Is the maximum of `map` (frames × bands) inside one of the cue boxes? nil without cues.
    /// A frame's time is its window's centre; a band's frequency its centre on the mel scale.
    public static func pointingGame(map: [Float], frames: Int, frontEnd fe: FrontEndConfig, cues: [CueRegion]) -> Pointing? {
        guard !cues.isEmpty, frames > 0 else { return nil }
        let bands = fe.melBands
        let centres = fe.melBandCentersHz
        func time(_ f: Int) -> Double { (Double(f * fe.hopLength) + Double(fe.windowLength) / 2) / Double(fe.sampleRate) }
        func inside(_ f: Int, _ b: Int) -> Bool {
            let t = time(f), hz = centres[b]
            return cues.contains { t >= $0.t0 && t <= $0.t1 && hz >= $0.f0 && hz <= $0.f1 }
        }
        // The peak: among the cells at the maximum (region maps are flat over whole tiles), the
        // one nearest to their centroid, so that a plateau points at its middle, not its corner.
        let peak = map.max()!
        let top = (0..<(frames * bands)).filter { map[$0] == peak }
        let cf = top.reduce(0.0) { $0 + Double($1 / bands) } / Double(top.count)
        let cb = top.reduce(0.0) { $0 + Double($1 % bands) } / Double(top.count)
        let best = top.min { a, b in
            let da = pow(Double(a / bands) - cf, 2) + pow(Double(a % bands) - cb, 2)
            let db = pow(Double(b / bands) - cf, 2) + pow(Double(b % bands) - cb, 2)
            return da < db
        }!
        var insideCount = 0
        for f in 0..<frames { for b in 0..<bands where inside(f, b) { insideCount += 1 } }
        let f = best / bands, b = best % bands
        // A flat map points nowhere: it scores a miss, not the hit its middle might happen to be.
        let flat = top.count == map.count
        return Pointing(hit: !flat && inside(f, b), frame: f, band: b, seconds: time(f), hertz: centres[b],
                        chance: Double(insideCount) / Double(frames * bands))
    }
}
