import Foundation
import Shared

/// Everything `ser preprocess` was asked to do.
public struct PreprocessSettings: Codable, Hashable, Sendable {
    public var corpora: [CorpusSpec]
    public var out: String
    public var frontEnd: FrontEndConfig
    public var labels: LabelSet
    public var gds: GDSSettings
    public var shards: Int
    public var blockSegments: Int
    public var minDuration: Double
    public var seed: UInt64
    public var testFraction: Double
    public var testSpeakers: [String]?
    public var resampler: ResamplerQuality
    public var compressionLevel: Int32

    public init(corpora: [CorpusSpec], out: String, frontEnd: FrontEndConfig = .yamnet, labels: LabelSet = .paper,
                gds: GDSSettings = GDSSettings(enabled: true, threshold: -1), shards: Int = 16, blockSegments: Int = 64,
                minDuration: Double = 0.5, seed: UInt64 = 1, testFraction: Double = 0.15, testSpeakers: [String]? = nil,
                resampler: ResamplerQuality = .best, compressionLevel: Int32 = 3) {
        self.corpora = corpora
        self.out = out
        self.frontEnd = frontEnd
        self.labels = labels
        self.gds = gds
        self.shards = shards
        self.blockSegments = blockSegments
        self.minDuration = minDuration
        self.seed = seed
        self.testFraction = testFraction
        self.testSpeakers = testSpeakers
        self.resampler = resampler
        self.compressionLevel = compressionLevel
    }

    /// Hash of the settings that change a shard's bytes for a given file list (resume compares it).
    public var shardSettingsHash: String {
        struct Key: Codable { var frontEnd: FrontEndConfig; var gds: GDSSettings; var blockSegments: Int; var resampler: ResamplerQuality; var level: Int32; var format: Int }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = (try? enc.encode(Key(frontEnd: frontEnd, gds: gds, blockSegments: blockSegments, resampler: resampler,
                                        level: compressionLevel, format: ShardFile.formatVersion))) ?? Data()
        return XXHash64.hex(XXHash64.hash(data))
    }

    public var shardsDirectory: String { out + "/shards" }
}
