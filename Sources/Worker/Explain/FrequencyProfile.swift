import Foundation
import Shared

/// Per-emotion frequency profile (the paper's Figure 24): for each class, the mean Grad-CAM
/// activation per mel band over the files of that class.
///
/// Each file contributes its band profile: its utterance Grad-CAM map scaled to a maximum of 1
/// (so that files with large logits do not outweigh the others), averaged over time. The class
/// profile is the mean of its files' profiles; files are grouped by their true label (files
/// without one are left out).
public struct FrequencyProfile: Codable, Sendable, Equatable {
    public var labels: [String]
    public var bandCentersHz: [Double]
    /// Mean profile per class (absent for a class with no file).
    public var profiles: [String: [Double]]
    public var files: [String: Int]
    public var layer: String

    /// A file's band profile: mean over frames of the map divided by its maximum (zeros for a zero map).
    public static func fileProfile(_ map: [Float], frames: Int, bands: Int) -> [Double] {
        let peak = Double(map.reduce(Float(0)) { max($0, $1) })
        let p = Assembly.bandProfile(map, frames: frames, bands: bands)
        return peak > 0 ? p.map { $0 / peak } : p.map { _ in 0 }
    }

    public init(labels: [String], bandCentersHz: [Double], layer: String, files items: [(label: String, profile: [Double])]) {
        self.labels = labels
        self.bandCentersHz = bandCentersHz
        self.layer = layer
        var sums: [String: [Double]] = [:], counts: [String: Int] = [:]
        for (label, p) in items {
            precondition(p.count == bandCentersHz.count, "a profile of \(p.count) bands for \(bandCentersHz.count)")
            var s = sums[label] ?? [Double](repeating: 0, count: p.count)
            for i in 0..<p.count { s[i] += p[i] }
            sums[label] = s
            counts[label, default: 0] += 1
        }
        profiles = sums.mapValues { $0 }
        for (k, n) in counts { profiles[k] = sums[k]!.map { $0 / Double(n) } }
        files = counts
    }

    /// The profiles as an SVG line chart: x = band centre in Hz, one line per class.
    public func svg() -> String {
        let series = labels.enumerated().compactMap { i, label -> LineSeries? in
            guard let p = profiles[label] else { return nil }
            return LineSeries(name: "\(label) (\(files[label] ?? 0) files)", x: bandCentersHz, y: p, color: Chart.color(i))
        }
        return Chart.line(series, title: "Grad-CAM (\(layer)) per mel band, mean over files of each class",
                          xLabel: "frequency (Hz)", yLabel: "mean activation (file max = 1)", width: 760, height: 420)
    }
}
