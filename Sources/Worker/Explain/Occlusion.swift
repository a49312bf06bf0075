import Foundation
import Shared

/// Occlusion sensitivity (Zeiler & Fergus 2014): a window slid over the patch is filled with the
/// baseline, and the drop of the target class's probability is charged to the cells it covered.
///
/// Window positions along each axis are 0, s, 2s, … and, when the stride does not land on the
/// last cell, one more window flush with the end, so that every cell is covered (Captum stops
/// short instead and leaves the last cells at zero). A cell's value is the mean drop
/// p(original) − p(occluded) over the windows that cover it; a negative value means hiding the
/// cell made the class more likely.
public enum Occlusion {
    public struct Settings: Codable, Hashable, Sendable {
        public var windowFrames = 16, windowBands = 16
        public var strideFrames = 8, strideBands = 8
        public init() {}
    }

    /// Window starts along an axis of `length` cells.
    public static func positions(length: Int, window: Int, stride: Int) -> [Int] {
        precondition(window >= 1 && window <= length && stride >= 1)
        var p = Array(Swift.stride(from: 0, through: length - window, by: stride))
        if p.last! != length - window { p.append(length - window) }
        return p
    }

    public struct PatchResult: Sendable {
        /// p(target) of the unoccluded patch.
        public var probability: Double
        /// Mean probability drop per cell (frames × bands).
        public var map: [Float]
    }

    public static func explain(_ classifier: PatchClassifier, patches: UnsafePointer<Float>, count: Int, target: Int,
                               settings s: Settings, baseline: Baseline, poll: @escaping () -> Void = {}) throws -> [PatchResult] {
        let frames = classifier.frames, bands = classifier.bands, per = frames * bands
        guard s.windowFrames <= frames, s.windowBands <= bands else {
            throw ExplainError("occlusion window \(s.windowFrames)×\(s.windowBands) is larger than the \(frames)×\(bands) patch")
        }
        let rows = positions(length: frames, window: s.windowFrames, stride: s.strideFrames)
        let cols = positions(length: bands, window: s.windowBands, stride: s.strideBands)
        let windows = rows.flatMap { r in cols.map { (r, $0) } }
        let copies = windows.count + 1   // copy 0 of each patch is the patch itself
        let fills = (0..<count).map { baseline.fill(patches + $0 * per, count: per) }
        var runner = BatchRunner(classifier, poll: poll)
        let probs = try runner.run(count: count * copies) { i, dst in
            let p = i / copies, k = i % copies
            dst.update(from: patches + p * per, count: per)
            guard k > 0 else { return }
            let (r0, c0) = windows[k - 1]
            let fill = fills[p]
            for r in r0..<(r0 + s.windowFrames) {
                (dst + r * bands + c0).update(repeating: fill, count: s.windowBands)
            }
        }
        let classes = classifier.classes
        var results: [PatchResult] = []
        for p in 0..<count {
            let base = probs[(p * copies) * classes + target]
            var sum = [Double](repeating: 0, count: per), hits = [Int](repeating: 0, count: per)
            for (k, (r0, c0)) in windows.enumerated() {
                let drop = base - probs[(p * copies + k + 1) * classes + target]
                for r in r0..<(r0 + s.windowFrames) {
                    for c in c0..<(c0 + s.windowBands) {
                        sum[r * bands + c] += drop
                        hits[r * bands + c] += 1
                    }
                }
            }
            results.append(PatchResult(probability: base, map: (0..<per).map { Float(sum[$0] / Double(max(1, hits[$0]))) }))
        }
        return results
    }
}
