import Foundation
import Shared

/// `ser preprocess` on every rank: plan, process this rank's shards, and (rank 0) write the manifest.
///
/// Rank r processes the shards s with s % N == r. Shard contents and global segment ids depend only
/// on the plan, never on N, so any number of ranks writes the same store. The manifest is written
/// last, atomically, by rank 0: a store without one is incomplete, and rerunning the same command
/// keeps every finished shard that still checks out.
public enum PreprocessJob {
    public struct Summary: Sendable {
        public var manifest: StoreManifest
        public var seconds: Double
        public var audioSecondsComputed: Double
        public var reusedShards: Int
        public var ranks: Int
    }

    /// Collective. Returns the summary on rank 0 (nil elsewhere). Errors that are not a single
    /// file's fault (an unwritable output folder, a full disk) end the job on every rank.
    public static func run(_ settings: PreprocessSettings, world: Communicator, console: Console,
                           program: String = "ser") throws -> Summary? {
        let t0 = Date()
        let shardsDir = settings.shardsDirectory
        if world.isRoot {
            try AtomicFile.makeDirectory(shardsDir)
            // The old manifest goes first: from here until the new one is written, the store is
            // visibly incomplete.
            let manifest = settings.out + "/" + StoreManifest.fileName
            if FileManager.default.fileExists(atPath: manifest) {
                guard unlink(manifest) == 0 else { throw FileError("\(manifest): cannot remove the previous manifest (\(String(cString: strerror(errno))))") }
                AtomicFile.syncDirectory(settings.out)
            }
            // Leftovers of interrupted runs and shards beyond the new count.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: shardsDir)) ?? [] {
                if name.hasPrefix(".shard-") && name.contains(".tmp.") {
                    unlink(shardsDir + "/" + name)
                } else if name.hasPrefix("shard-"), name.hasSuffix(".seg"),
                          let n = Int(name.dropFirst(6).dropLast(4)), n >= settings.shards {
                    unlink(shardsDir + "/" + name)
                }
            }
        }
        world.barrier()

        let plan = try PreprocessPlan.make(settings, world: world)
        if world.isRoot {
            console.info("preprocess: \(plan.files.count) files in \(settings.shards) shards over \(world.size) rank(s), \(ComputeThreads.current) thread(s) each; \(plan.skipped.count) skipped, \(plan.droppedLabels.values.reduce(0, +)) outside the label set")
        }
        let processor = ShardProcessor(settings: settings, plan: plan)
        let myShards = (0..<settings.shards).filter { $0 % world.size == world.rank }
        let myFiles = myShards.map { plan.shards[$0].count }.reduce(0, +)
        let progress = Progress("preprocess (rank 0's shards)", total: myFiles, unit: "files", console: console)
        let lock = NSLock()
        var outcomes: [ShardOutcome] = []
        for s in myShards {
            let o: ShardOutcome
            do {
                o = try processor.run(shard: s, console: console) { n in
                    guard world.isRoot else { return }
                    lock.lock()
                    progress.advance(by: n)
                    lock.unlock()
                }
            } catch {
                world.abort("\(ShardFile.name(s)): \(error). Finished shards are kept; rerun the same command to resume.")
            }
            for skip in o.skipped where !o.reused { console.warn("skipped \(skip.path): \(skip.reason)") }
            outcomes.append(o)
        }
        if world.isRoot { progress.finish() }

        let mine = Array(try JSONEncoder().encode(outcomes))
        let gathered = world.gather(mine, root: 0)
        guard world.isRoot, let gathered else { return nil }
        var all: [ShardOutcome] = []
        for part in gathered { all += try JSONDecoder().decode([ShardOutcome].self, from: Data(part)) }
        all.sort { $0.shard < $1.shard }
        let manifest = try buildManifest(settings, plan: plan, outcomes: all, program: program)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(manifest), to: settings.out + "/" + StoreManifest.fileName)
        for skip in plan.skipped { console.warn("skipped \(skip.path): \(skip.reason)") }
        return Summary(manifest: manifest, seconds: Date().timeIntervalSince(t0), audioSecondsComputed: all.map(\.audioSeconds).reduce(0, +),
                       reusedShards: all.filter(\.reused).count, ranks: world.size)
    }

    /// The manifest from the plan and every shard's outcome (shard order).
    static func buildManifest(_ settings: PreprocessSettings, plan: PreprocessPlan, outcomes: [ShardOutcome], program: String) throws -> StoreManifest {
        precondition(outcomes.map(\.shard) == Array(0..<settings.shards), "missing shard outcomes")
        var files: [StoredFile] = []
        var shards: [ShardSummary] = []
        var skipped = plan.skipped
        var next = 0
        for o in outcomes {
            for r in o.files {
                let p = plan.files[r.canonical]
                files.append(StoredFile(id: files.count, corpus: p.entry.corpus, corpusKind: p.entry.kind, path: p.entry.path,
                                        relativePath: p.entry.relativePath, label: settings.labels.names[p.labelIndex], labelIndex: p.labelIndex,
                                        rawLabel: p.entry.rawLabel, speaker: p.entry.speaker, durationSeconds: r.durationSeconds,
                                        sourceSampleRate: r.sourceSampleRate, shard: o.shard, firstSegment: next + r.firstSegment,
                                        segmentsBefore: r.segmentsBefore, segmentsAfter: r.segmentsAfter,
                                        segmentsRemoved: r.segmentsBefore - r.segmentsAfter, constantSegments: r.constantSegments,
                                        cues: p.entry.cues))
            }
            shards.append(ShardSummary(shard: o.shard, file: "shards/" + ShardFile.name(o.shard), files: o.files.count, firstSegment: next,
                                       segments: o.segments, kept: o.kept, bytes: o.bytes, skipped: o.skipped.count))
            skipped += o.skipped
            next += o.segments
        }
        var perClass: [String: StoreManifest.Counts] = [:], perSpeaker: [String: StoreManifest.Counts] = [:]
        var totals = StoreManifest.Counts()
        for f in files {
            perClass[f.label, default: .init()].add(f)
            perSpeaker[f.speaker, default: .init()].add(f)
            totals.add(f)
        }
        let labels = files.map(\.labelIndex)
        let random = SplitMaker.random(labels: labels, fraction: settings.testFraction, seed: settings.seed)
        let speaker = try SplitMaker.speaker(labels: labels, speakers: files.map(\.speaker), fraction: settings.testFraction,
                                             seed: settings.seed, given: settings.testSpeakers)
        var libs: [String: String] = [:]
        for (k, v) in [("FFT", NativeLibraries.fftw), ("audio I/O", NativeLibraries.sndfile), ("resampler", NativeLibraries.samplerate),
                       ("compression", NativeLibraries.zstd)] { libs[k] = v }
        return StoreManifest(
            formatVersion: StoreManifest.formatVersion,
            createdBy: .init(program: program, libraries: libs),
            frontEnd: settings.frontEnd, frontEndHash: settings.frontEnd.hash, labels: settings.labels.names,
            corpora: settings.corpora, gds: settings.gds,
            options: StoreOptions(shards: settings.shards, blockSegments: settings.blockSegments, minDurationSeconds: settings.minDuration,
                                  seed: settings.seed, testFraction: settings.testFraction, resampler: settings.resampler),
            segmentShape: [settings.frontEnd.patchFrames, settings.frontEnd.melBands], segmentCount: next,
            totalDurationSeconds: files.map(\.durationSeconds).reduce(0, +),
            files: files, shards: shards, perClass: perClass, perSpeaker: perSpeaker, gdsTotals: totals,
            skipped: skipped, droppedLabels: plan.droppedLabels, splits: Splits(random: random, speaker: speaker))
    }
}
