/// Cuts a log-mel matrix into the patches the networks take: `patchFrames` consecutive frames ×
/// all mel bands, one every `patchHop` frames.
///
/// Short files and tails are decided before framing, by the configuration's `TailPadding`:
/// with `.yamnet` the padded clip gives exactly 1 + (F − 96)/48 patches and no frame is left out;
/// with `.dropTail` a clip shorter than one patch was padded to exactly one patch, and frames after
/// the last full patch are not used.
public struct Segmenter: Sendable {
    public let patchFrames: Int
    public let patchHop: Int
    public let bands: Int

    public init(config: FrontEndConfig) {
        patchFrames = config.patchFrames
        patchHop = config.patchHop
        bands = config.melBands
    }

    public func count(frames: Int) -> Int {
        frames < patchFrames ? 0 : 1 + (frames - patchFrames) / patchHop
    }

    public func startFrames(frames: Int) -> [Int] {
        (0..<count(frames: frames)).map { $0 * patchHop }
    }

    /// Patch p is rows [p·hop, p·hop + patchFrames) of the row-major [frames × bands] matrix.
    public func patches(logMel values: [Float], frames: Int) -> (count: Int, values: [Float], startFrames: [Int]) {
        precondition(values.count == frames * bands, "log-mel matrix has \(values.count) values, expected \(frames) × \(bands)")
        let starts = startFrames(frames: frames)
        let size = patchFrames * bands
        var out = [Float](repeating: 0, count: starts.count * size)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (p, s) in starts.enumerated() {
                    (dst.baseAddress! + p * size).update(from: src.baseAddress! + s * bands, count: size)
                }
            }
        }
        return (starts.count, out, starts)
    }
}
