import Foundation
import Shared

/// One feature vector per utterance, the autoencoders' input (docs/FAMILIES.md §1).
///
/// From a file's log-mel matrix (F frames × B bands; B = 64 with both presets):
///
///     mean_mel_bb    mean over frames of band bb                      (B values)
///     std_mel_bb     standard deviation over frames of band bb        (B values)
///     mean_delta_bb  mean over frames of band bb's delta              (B values)
///     std_delta_bb   standard deviation over frames of the delta      (B values)
///
/// in this order, 4·B = 256 features. Standard deviations are population ones (÷ F). The delta is
/// HTK's regression over ±2 frames, d_t = Σ_{n=1..2} n·(c_{t+n} − c_{t−n}) / (2·Σ n²) =
/// [(c_{t+1} − c_{t−1}) + 2·(c_{t+2} − c_{t−2})] / 10, with the first and last frame repeated at
/// the edges (a one-frame file has delta 0).
///
/// The store keeps log-mel *segments* (96 frames every 48), not whole matrices: a file's matrix is
/// put back together from all its segments (GDS is ignored, the features describe the whole
/// utterance), frame t coming from any segment that covers it (overlapping segments hold the same
/// values). Frames the front end computed from its padding zeros — past the end of the audio —
/// are left out, so a short file's statistics are not pulled towards ln(offset).
public enum UtteranceFeatures {
    public static let groups = ["mean_mel", "std_mel", "mean_delta", "std_delta"]

    /// The feature names for `bands` mel bands, in vector order.
    public static func names(bands: Int) -> [String] {
        let digits = bands > 100 ? 3 : 2
        return groups.flatMap { g in (0..<bands).map { g + "_" + String(format: "%0\(digits)d", $0) } }
    }

    /// The group (0..<4) of feature index `i`.
    public static func group(of i: Int, bands: Int) -> Int { i / bands }

    /// Features of a log-mel matrix `values` (frames × bands, row-major). Needs frames ≥ 1.
    public static func compute(logMel values: UnsafeBufferPointer<Float>, frames: Int, bands: Int) -> [Double] {
        precondition(frames >= 1 && values.count >= frames * bands, "need at least one frame of \(bands) bands")
        var out = [Double](repeating: 0, count: 4 * bands)
        let n = Double(frames)
        @inline(__always) func c(_ t: Int, _ b: Int) -> Double { Double(values[min(max(t, 0), frames - 1) * bands + b]) }
        for b in 0..<bands {
            var sum = 0.0, dsum = 0.0
            for t in 0..<frames { sum += c(t, b) }
            let mean = sum / n
            var sq = 0.0
            for t in 0..<frames { let d = c(t, b) - mean; sq += d * d }
            var deltas = [Double](repeating: 0, count: frames)
            for t in 0..<frames {
                deltas[t] = ((c(t + 1, b) - c(t - 1, b)) + 2 * (c(t + 2, b) - c(t - 2, b))) / 10
                dsum += deltas[t]
            }
            let dmean = dsum / n
            var dsq = 0.0
            for t in 0..<frames { let d = deltas[t] - dmean; dsq += d * d }
            out[b] = mean
            out[bands + b] = (sq / n).squareRoot()
            out[2 * bands + b] = dmean
            out[3 * bands + b] = (dsq / n).squareRoot()
        }
        return out
    }

    public static func compute(logMel values: [Float], frames: Int, bands: Int) -> [Double] {
        values.withUnsafeBufferPointer { compute(logMel: $0, frames: frames, bands: bands) }
    }

    /// Frames of a clip of `durationSeconds` whose window lies entirely within the audio (at least 1).
    public static func audioFrames(durationSeconds: Double, frontEnd: FrontEndConfig) -> Int {
        let n = Int((durationSeconds * Double(frontEnd.sampleRate)).rounded())
        return max(1, frontEnd.frameCount(paddedLength: n))
    }

    /// Puts a log-mel matrix back together from segments of `patchFrames` frames starting at
    /// `startFrames`, keeping the first `frames` frames (or as many as the segments cover).
    public static func reassemble(segments: [[Float]], startFrames: [Int], patchFrames: Int, bands: Int,
                                  frames: Int) -> (values: [Float], frames: Int) {
        precondition(segments.count == startFrames.count && !segments.isEmpty)
        let covered = zip(segments, startFrames).map { $1 + min(patchFrames, $0.count / bands) }.max()!
        let f = max(1, min(frames, covered))
        var out = [Float](repeating: 0, count: f * bands)
        var have = [Bool](repeating: false, count: f)
        for (seg, start) in zip(segments, startFrames) {
            for k in 0..<patchFrames {
                let t = start + k
                if t >= f || have[t] { continue }
                for b in 0..<bands { out[t * bands + b] = seg[k * bands + b] }
                have[t] = true
            }
        }
        precondition(have.allSatisfy { $0 }, "the segments leave frames of the file uncovered")
        return (out, f)
    }

    /// The features of store file `fileID`, from all its stored segments.
    public static func compute(file fileID: Int, store: FeatureStore, reader: SegmentReader) throws -> [Double] {
        let f = store.files[fileID]
        let fe = store.frontEnd
        var segs: [[Float]] = [], starts: [Int] = []
        for id in f.segments {
            segs.append(try reader.read(id))
            starts.append(store.segment(id).startFrame)
        }
        guard !segs.isEmpty else { throw FileError("\(store.directory): file \(f.relativePath) has no stored segments") }
        let m = reassemble(segments: segs, startFrames: starts, patchFrames: fe.patchFrames, bands: fe.melBands,
                           frames: audioFrames(durationSeconds: f.durationSeconds, frontEnd: fe))
        return compute(logMel: m.values, frames: m.frames, bands: fe.melBands)
    }

    /// Collective: the features of `files`, in that order, on every rank. Each rank computes the
    /// files of its own shards; the rows are then exchanged.
    public static func table(store: FeatureStore, files: [Int], world: Communicator) throws -> [[Double]] {
        let reader = store.makeReader(cacheBlocks: 2)
        return try FamilyRun.distributedRows(store: store, files: files, width: 4 * store.frontEnd.melBands, world: world) {
            try compute(file: $0, store: store, reader: reader)
        }
    }
}
