import Foundation
import Shared

/// From patches back to the utterance: a file's patches overlap (96 frames every 48), and each
/// gets its own map; the utterance map is their mean where they overlap.
public enum Assembly {
    /// Frames covered by patches of `patchFrames` starting at `startFrames`.
    public static func coveredFrames(startFrames: [Int], patchFrames: Int) -> Int {
        (startFrames.max() ?? -patchFrames) + patchFrames
    }

    /// The mean of the patch maps (count × patchFrames × bands, patch p starting at frame
    /// `startFrames[p]`) at every frame of the utterance: frames × bands, frames = covered frames.
    public static func utterance(_ maps: [Float], startFrames: [Int], patchFrames: Int, bands: Int) -> [Float] {
        let count = startFrames.count
        precondition(maps.count == count * patchFrames * bands, "\(maps.count) map values for \(count) patches of \(patchFrames) × \(bands)")
        let frames = coveredFrames(startFrames: startFrames, patchFrames: patchFrames)
        var sum = [Double](repeating: 0, count: frames * bands)
        var n = [Int](repeating: 0, count: frames)
        for (p, start) in startFrames.enumerated() {
            for f in 0..<patchFrames {
                n[start + f] += 1
                let src = (p * patchFrames + f) * bands, dst = (start + f) * bands
                for b in 0..<bands { sum[dst + b] += Double(maps[src + b]) }
            }
        }
        var out = [Float](repeating: 0, count: frames * bands)
        for f in 0..<frames where n[f] > 0 {
            for b in 0..<bands { out[f * bands + b] = Float(sum[f * bands + b] / Double(n[f])) }
        }
        return out
    }

    /// The utterance's log-mel matrix rebuilt from its (overlapping, identical where they
    /// overlap) patches: what the spectrogram image shows under the map.
    public static func logMel(patches: [Float], startFrames: [Int], patchFrames: Int, bands: Int) -> [Float] {
        let frames = coveredFrames(startFrames: startFrames, patchFrames: patchFrames)
        var out = [Float](repeating: .nan, count: frames * bands)
        for (p, start) in startFrames.enumerated() {
            for f in 0..<(patchFrames * bands) { out[start * bands + f] = patches[p * patchFrames * bands + f] }
        }
        return out
    }

    /// Mean over time of an utterance map: one value per mel band.
    public static func bandProfile(_ map: [Float], frames: Int, bands: Int) -> [Double] {
        precondition(map.count == frames * bands && frames > 0)
        var out = [Double](repeating: 0, count: bands)
        for f in 0..<frames {
            for b in 0..<bands { out[b] += Double(map[f * bands + b]) }
        }
        return out.map { $0 / Double(frames) }
    }

    /// Sum over frequency of an utterance map: one value per frame.
    public static func timeProfile(_ map: [Float], frames: Int, bands: Int) -> [Double] {
        precondition(map.count == frames * bands)
        return (0..<frames).map { f in (0..<bands).reduce(0.0) { $0 + Double(map[f * bands + $1]) } }
    }
}
