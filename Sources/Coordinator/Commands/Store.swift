import ArgumentParser
import Foundation
import Shared

/// `ser store …`: looking into a feature store.
struct Store: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect a feature store written by `ser preprocess`.",
        subcommands: [StoreInfo.self]
    )
}

struct StoreInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Summarise a store: counts per class, speaker and shard, GDS statistics, splits, skipped files.",
        discussion: "Opens the manifest and every shard index (checking their checksums); exits with status 1 and a message if the store is incomplete or damaged."
    )

    @Argument(help: ArgumentHelp("The store directory.", valueName: "dir")) var dir: String
    @Flag(help: "Print the manifest's summary fields as JSON.") var json = false
    @Flag(help: "Also decompress every block and check its XXH64 (reads all the data).") var verify = false

    func run() throws {
        let store: FeatureStore
        do { store = try FeatureStore.open(dir) } catch {
            FileHandle.standardError.write(Data("ser store info: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if verify {
            do {
                for s in store.manifest.shards { try ShardFile.verifyBlocks(store.directory + "/" + s.file, try ShardFile.readIndex(store.directory + "/" + s.file)) }
            } catch {
                FileHandle.standardError.write(Data("ser store info: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        let m = store.manifest
        if json {
            struct Summary: Encodable {
                var frontEnd: FrontEndConfig; var frontEndHash: String; var labels: [String]; var segmentCount: Int
                var files: Int; var perClass: [String: StoreManifest.Counts]; var perSpeaker: [String: StoreManifest.Counts]
                var shards: [ShardSummary]; var gds: GDSSettings; var gdsTotals: StoreManifest.Counts
                var skipped: [SkippedFile]; var droppedLabels: [String: Int]
                var splits: [String: [String: Int]]; var testSpeakers: [String]
            }
            let s = Summary(frontEnd: m.frontEnd, frontEndHash: m.frontEndHash, labels: m.labels, segmentCount: m.segmentCount,
                            files: m.files.count, perClass: m.perClass, perSpeaker: m.perSpeaker, shards: m.shards, gds: m.gds,
                            gdsTotals: m.gdsTotals, skipped: m.skipped, droppedLabels: m.droppedLabels,
                            splits: ["random": ["train": m.splits.random.train.count, "test": m.splits.random.test.count],
                                     "speaker": ["train": m.splits.speaker.train.count, "test": m.splits.speaker.test.count]],
                            testSpeakers: m.splits.speaker.testSpeakers ?? [])
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(s), as: UTF8.self))
            return
        }
        let fe = m.frontEnd
        print("store        \(store.directory)")
        print("front end    \(fe.sampleRate) Hz, window \(fe.windowLength), hop \(fe.hopLength), FFT \(fe.fftLength), \(fe.melBands) mel \(Int(fe.fMin))–\(Int(fe.fMax)) Hz, ln(mel + \(fe.logOffset)), padding \(fe.padding.rawValue), segments \(fe.patchFrames)×\(fe.melBands) hop \(fe.patchHop) (hash \(m.frontEndHash))")
        print("corpora      \(m.corpora.map { "\($0.kind.rawValue):\($0.path)" }.joined(separator: " "))")
        print(String(format: "files        %d (%.1f min of audio); %d skipped; outside the label set: %@", m.files.count, m.totalDurationSeconds / 60,
                     m.skipped.count, (m.droppedLabels.isEmpty ? "none" : m.droppedLabels.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) as NSString))
        print(String(format: "GDS          %@, T = %g: %d segments, %d kept, %d removed (%.1f %%), %d constant", (m.gds.enabled ? "on" : "off") as NSString,
                     m.gds.threshold, m.gdsTotals.segmentsBefore, m.gdsTotals.segmentsAfter, m.gdsTotals.segmentsRemoved, 100 * m.fractionRemoved, m.gdsTotals.constantSegments))
        func row(_ name: String, _ c: StoreManifest.Counts) -> String {
            "  \(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(String(format: "%5d files  %7d segments  %7d kept  %6d removed", c.files, c.segmentsBefore, c.segmentsAfter, c.segmentsRemoved))"
        }
        print("per class")
        for (i, l) in m.labels.enumerated() { print(row("\(i) \(l)", m.perClass[l] ?? .init())) }
        print("per speaker")
        for (k, c) in m.perSpeaker.sorted(by: { $0.key < $1.key }) { print(row(k, c)) }
        print("per shard")
        for s in m.shards {
            print("  \(s.file)  \(String(format: "%5d files  %7d segments  %7d kept  %9d bytes  first id %d", s.files, s.segments, s.kept, s.bytes, s.firstSegment))")
        }
        print("splits")
        print("  random   train \(m.splits.random.train.count) files, test \(m.splits.random.test.count) (\(m.splits.random.method))")
        print("  speaker  train \(m.splits.speaker.train.count) files, test \(m.splits.speaker.test.count); held out: \((m.splits.speaker.testSpeakers ?? []).joined(separator: ", "))")
        if !m.skipped.isEmpty {
            print("skipped files")
            for s in m.skipped { print("  \(s.path): \(s.reason)") }
        }
    }
}
