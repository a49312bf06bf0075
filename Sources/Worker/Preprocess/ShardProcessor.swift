import Foundation
import Shared

/// What a rank reports about one shard it finished (gathered by rank 0 for the manifest).
public struct ShardOutcome: Codable, Sendable {
    public var shard: Int
    public var files: [ShardFileRecord]
    public var skipped: [SkippedFile]
    public var segments: Int
    public var kept: Int
    public var bytes: Int
    /// True when an existing, valid shard was kept instead of being recomputed.
    public var reused: Bool
    /// Seconds of audio decoded for it in this run (0 when reused).
    public var audioSeconds: Double

    init(index: ShardIndex, bytes: Int, reused: Bool, audioSeconds: Double) {
        shard = index.shard
        files = index.files
        skipped = index.skipped
        segments = index.segmentCount
        kept = index.segments.kept.filter { $0 }.count
        self.bytes = bytes
        self.reused = reused
        self.audioSeconds = audioSeconds
    }
}

/// Turns the files of one shard into a shard file: decode, resample, log-mel, patches, GDS, write.
///
/// Files are processed in parallel over the rank's compute threads (one `LogMelExtractor` each) and
/// appended in canonical order, so the shard's bytes do not depend on the thread count.
public final class ShardProcessor {
    public let settings: PreprocessSettings
    public let plan: PreprocessPlan
    private let pool: ExtractorPool

    public init(settings: PreprocessSettings, plan: PreprocessPlan) {
        self.settings = settings
        self.plan = plan
        pool = ExtractorPool(config: settings.frontEnd)
    }

    public func path(_ shard: Int) -> String { settings.shardsDirectory + "/" + ShardFile.name(shard) }

    /// The shard's files as recorded for resume: path, frames and rate from the header, so a file
    /// replaced by a different recording under the same name is noticed.
    func assigned(_ shard: Int) -> [String] {
        plan.shards[shard].map { let f = plan.files[$0]; return "\(f.entry.path)|\(f.frames)|\(f.sampleRate)" }
    }

    /// A valid shard already on disk for exactly this work, or nil (with the reason when it exists).
    public func reusable(_ shard: Int) -> (index: ShardIndex?, why: String?) {
        let p = path(shard)
        guard FileManager.default.fileExists(atPath: p) else { return (nil, nil) }
        do {
            let idx = try ShardFile.readIndex(p)
            guard idx.shard == shard, idx.settingsHash == settings.shardSettingsHash, idx.frontEndHash == settings.frontEnd.hash else {
                return (nil, "made with other settings")
            }
            guard idx.assigned == assigned(shard) else { return (nil, "made for another file list, or its files changed") }
            try ShardFile.verifyBlocks(p, idx)
            return (idx, nil)
        } catch {
            return (nil, "\(error)")
        }
    }

    /// Reuses or (re)computes shard `shard`. `progress` is called after each file (any thread).
    public func run(shard: Int, console: Console, progress: (Int) -> Void = { _ in }) throws -> ShardOutcome {
        let p = path(shard)
        let (existing, why) = reusable(shard)
        if let existing {
            progress(plan.shards[shard].count)
            return ShardOutcome(index: existing, bytes: fileSize(p), reused: true, audioSeconds: 0)
        }
        if let why { console.info("\(ShardFile.name(shard)): recomputing (\(why))") }
        let members = plan.shards[shard]
        let writer = try ShardWriter(path: p, shard: shard, frontEnd: settings.frontEnd, settingsHash: settings.shardSettingsHash,
                                     assigned: assigned(shard), blockSegments: settings.blockSegments,
                                     level: settings.compressionLevel)
        var audioSeconds = 0.0
        // Chunks of a few files per thread bound the memory to a few files' segments.
        let chunk = max(1, 4 * ComputeThreads.current)
        var start = 0
        while start < members.count {
            let part = Array(members[start..<min(start + chunk, members.count)])
            var results = [FileResult?](repeating: nil, count: part.count)
            results.withUnsafeMutableBufferPointer { out in
                ComputeThreads.parallelFor(part.count) { k in
                    out[k] = self.process(self.plan.files[part[k]])
                    progress(1)
                }
            }
            for (k, r) in results.enumerated() {
                let file = plan.files[part[k]]
                switch r! {
                case .skipped(let reason):
                    writer.skip(SkippedFile(path: file.entry.path, reason: reason))
                case .done(let record, let values, let starts, let gds, let seconds):
                    audioSeconds += seconds
                    try values.withUnsafeBufferPointer { try writer.add(record, segments: $0, startFrames: starts, gds: gds) }
                }
            }
            start += part.count
        }
        let index = try writer.finish()
        return ShardOutcome(index: index, bytes: fileSize(p), reused: false, audioSeconds: audioSeconds)
    }

    enum FileResult {
        case skipped(String)
        case done(ShardFileRecord, [Float], [Int], GaussianDataSelection.Result, Double)
    }

    func process(_ file: PlannedFile) -> FileResult {
        let config = settings.frontEnd
        var clip: AudioClip
        do {
            clip = try AudioFile.read(file.entry.path)
        } catch {
            return .skipped(strip("\(error)", file.entry.path))
        }
        let sourceRate = clip.sampleRate, duration = clip.duration
        if duration < settings.minDuration {
            return .skipped(String(format: "too short: %.3f s of audio, the minimum is %.3g s (--min-duration)", duration, settings.minDuration))
        }
        var peak: Float = 0
        for s in clip.samples { peak = max(peak, abs(s)) }
        if peak < 1.0 / 32768 {
            return .skipped(peak == 0 ? "silent: every sample is 0" : String(format: "silent: peak amplitude %.2g is below one 16-bit step", peak))
        }
        if sourceRate != config.sampleRate {
            do {
                clip.samples = try AudioFile.resample(clip.samples, from: sourceRate, to: config.sampleRate, quality: settings.resampler)
            } catch {
                return .skipped("\(error)")
            }
        }
        let extractor = pool.take()
        let mel = clip.samples.withUnsafeBufferPointer { extractor.logMel($0) }
        let cut = extractor.patches(logMel: mel.values, frames: mel.frames)
        pool.give(extractor)
        guard cut.count > 0 else {
            return .skipped("too short for one patch of \(config.patchFrames) frames after padding")
        }
        var gds = GaussianDataSelection.select(cut.values, count: cut.count, length: config.patchValues, threshold: settings.gds.threshold)
        if !settings.gds.enabled { gds.kept = Array(repeating: true, count: cut.count) }
        let record = ShardFileRecord(canonical: file.canonical, path: file.entry.path, durationSeconds: duration,
                                     sourceSampleRate: sourceRate, channels: clip.channels, firstSegment: 0,
                                     segmentsBefore: 0, segmentsAfter: 0, constantSegments: 0)
        return .done(record, cut.values, cut.startFrames, gds, duration)
    }

    private func strip(_ message: String, _ path: String) -> String {
        message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
    }

    private func fileSize(_ p: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? NSNumber)?.intValue ?? 0
    }
}

/// Extractors for the threads of a rank: FFTW plans are made once and reused.
final class ExtractorPool: @unchecked Sendable {
    private let config: FrontEndConfig
    private var free: [LogMelExtractor] = []
    private let lock = NSLock()

    init(config: FrontEndConfig) { self.config = config }

    func take() -> LogMelExtractor {
        lock.lock()
        defer { lock.unlock() }
        return free.popLast() ?? LogMelExtractor(config: config)
    }

    func give(_ e: LogMelExtractor) {
        lock.lock()
        free.append(e)
        lock.unlock()
    }
}
