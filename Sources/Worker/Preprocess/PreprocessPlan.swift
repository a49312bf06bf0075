import Foundation
import Shared

/// A file accepted for processing: its corpus entry, label index and header facts.
public struct PlannedFile: Codable, Hashable, Sendable {
    /// Position in the canonical order (corpus argument order, then relative path).
    public var canonical: Int
    public var entry: CorpusEntry
    public var labelIndex: Int
    public var frames: Int
    public var sampleRate: Int
    public var channels: Int
}

/// Which files go into which shard, decided identically on every rank.
public struct PreprocessPlan: Codable, Sendable {
    public var files: [PlannedFile]
    /// Files left out before decoding (bad names, unknown labels, unreadable headers, too short).
    public var skipped: [SkippedFile]
    public var droppedLabels: [String: Int]
    /// Per shard, indices into `files` in canonical order.
    public var shards: [[Int]]

    /// Scans the corpora (rank 0, broadcast), reads every header (split over ranks and threads),
    /// drops what cannot be used and assigns the rest to shards. Collective.
    public static func make(_ settings: PreprocessSettings, world: Communicator) throws -> PreprocessPlan {
        // 1. Scan on rank 0 so that every rank sees one listing, even on file systems whose
        //    directory views differ between nodes.
        var bytes: [UInt8] = []
        if world.isRoot {
            var scanned: (entries: [CorpusEntry], skipped: [SkippedFile]) = ([], [])
            for (i, spec) in settings.corpora.enumerated() {
                let o = CorpusScanner.scan(spec, index: i)
                scanned.entries += o.entries
                scanned.skipped += o.skipped
            }
            bytes = Array(try JSONEncoder().encode(Scan(entries: scanned.entries, skipped: scanned.skipped)))
        }
        bytes = world.broadcast(bytes: bytes, root: 0)
        let scan = try JSONDecoder().decode(Scan.self, from: Data(bytes))

        // 2. Labels: unknown ones are skipped (an error in the data), others outside the set dropped.
        var skipped = scan.skipped
        var dropped: [String: Int] = [:]
        var candidates: [(CorpusEntry, Int)] = []
        for e in scan.entries {
            guard let emotion = e.emotion else {
                skipped.append(SkippedFile(path: e.path, reason: "unknown label '\(e.rawLabel)' for a \(e.kind.rawValue) file (known emotions: \(Emotion.canonical.joined(separator: ", ")))"))
                continue
            }
            guard let li = settings.labels.index(of: emotion) else {
                dropped[emotion, default: 0] += 1
                continue
            }
            candidates.append((e, li))
        }

        // 3. Headers: rank r reads every N-th one, with its threads; results gathered everywhere.
        let n = candidates.count
        let mine = Array(stride(from: world.rank, to: n, by: world.size))
        var probes = [Probe](repeating: Probe(), count: mine.count)
        probes.withUnsafeMutableBufferPointer { out in
            ComputeThreads.parallelFor(mine.count) { k in
                let e = candidates[mine[k]].0
                do {
                    let info = try AudioFile.info(e.path)
                    if info.frames == 0 {
                        out[k] = Probe(reason: "empty: the file holds no audio frames")
                    } else if info.duration < settings.minDuration {
                        out[k] = Probe(reason: String(format: "too short: %.3f s of audio, the minimum is %.3g s (--min-duration)", info.duration, settings.minDuration))
                    } else {
                        out[k] = Probe(frames: info.frames, sampleRate: info.sampleRate, channels: info.channels)
                    }
                } catch {
                    out[k] = Probe(reason: "\(error)")
                }
            }
        }
        let gathered = world.allgather(Array(try JSONEncoder().encode(probes)))
        var all = [Probe](repeating: Probe(), count: n)
        for (r, part) in gathered.enumerated() {
            let decoded = try JSONDecoder().decode([Probe].self, from: Data(part))
            for (k, p) in decoded.enumerated() { all[r + k * world.size] = p }
        }

        var files: [PlannedFile] = []
        for (i, (e, li)) in candidates.enumerated() {
            let p = all[i]
            if let reason = p.reason {
                skipped.append(SkippedFile(path: e.path, reason: reason.hasPrefix(e.path) ? String(reason.dropFirst(e.path.count + 2)) : reason))
            } else {
                files.append(PlannedFile(canonical: files.count, entry: e, labelIndex: li, frames: p.frames, sampleRate: p.sampleRate, channels: p.channels))
            }
        }

        // 4. Shards: a seeded shuffle dealt round-robin (equal counts ±1, random content); canonical
        //    order inside each shard.
        var order = Array(files.indices)
        var rng = SeededGenerator(seed: settings.seed, stream: "preprocess/shards")
        order.seededShuffle(using: &rng)
        var shards = [[Int]](repeating: [], count: settings.shards)
        for (k, f) in order.enumerated() { shards[k % settings.shards].append(f) }
        for s in shards.indices { shards[s].sort() }
        return PreprocessPlan(files: files, skipped: skipped, droppedLabels: dropped, shards: shards)
    }

    struct Scan: Codable { var entries: [CorpusEntry]; var skipped: [SkippedFile] }

    struct Probe: Codable {
        var frames = 0, sampleRate = 0, channels = 0
        var reason: String?
        init() {}
        init(frames: Int, sampleRate: Int, channels: Int) { self.frames = frames; self.sampleRate = sampleRate; self.channels = channels }
        init(reason: String) { self.reason = reason }
    }
}
