import Foundation

/// `DIR/manifest.json`: everything about a feature store except the segment data and per-segment
/// metadata (those live in the shards). Written last, atomically, by rank 0: its presence means
/// the store is complete.
public struct StoreManifest: Codable, Equatable, Sendable {
    public static let formatVersion = 1
    public static let fileName = "manifest.json"

    public var formatVersion: Int
    public var createdBy: CreatedBy
    public var frontEnd: FrontEndConfig
    public var frontEndHash: String
    /// Class names in label-index order.
    public var labels: [String]
    public var corpora: [CorpusSpec]
    public var gds: GDSSettings
    public var options: StoreOptions
    /// [patchFrames, melBands] of every segment.
    public var segmentShape: [Int]
    public var segmentCount: Int
    public var totalDurationSeconds: Double
    public var files: [StoredFile]
    public var shards: [ShardSummary]
    public var perClass: [String: Counts]
    public var perSpeaker: [String: Counts]
    public var gdsTotals: Counts
    public var skipped: [SkippedFile]
    /// Files whose emotion is not in `labels`, per emotion (not errors: left out on purpose).
    public var droppedLabels: [String: Int]
    public var splits: Splits

    public struct CreatedBy: Codable, Equatable, Sendable {
        public var program: String
        public var libraries: [String: String]
        public init(program: String, libraries: [String: String]) {
            self.program = program
            self.libraries = libraries
        }
    }

    /// Counts of files and segments before and after GDS.
    public struct Counts: Codable, Equatable, Sendable {
        public var files = 0
        public var segmentsBefore = 0
        public var segmentsAfter = 0
        public var segmentsRemoved: Int { segmentsBefore - segmentsAfter }
        /// Constant segments (not scored, dropped).
        public var constantSegments = 0
        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            files = try c.decode(Int.self, forKey: .files)
            segmentsBefore = try c.decode(Int.self, forKey: .segmentsBefore)
            segmentsAfter = try c.decode(Int.self, forKey: .segmentsAfter)
            constantSegments = try c.decode(Int.self, forKey: .constantSegments)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(files, forKey: .files)
            try c.encode(segmentsBefore, forKey: .segmentsBefore)
            try c.encode(segmentsAfter, forKey: .segmentsAfter)
            try c.encode(segmentsRemoved, forKey: .segmentsRemoved)
            try c.encode(constantSegments, forKey: .constantSegments)
        }

        enum Keys: String, CodingKey { case files, segmentsBefore, segmentsAfter, segmentsRemoved, constantSegments }

        public mutating func add(_ f: StoredFile) {
            files += 1
            segmentsBefore += f.segmentsBefore
            segmentsAfter += f.segmentsAfter
            constantSegments += f.constantSegments
        }
    }

    public var fractionRemoved: Double {
        gdsTotals.segmentsBefore > 0 ? Double(gdsTotals.segmentsRemoved) / Double(gdsTotals.segmentsBefore) : 0
    }

    public init(formatVersion: Int, createdBy: CreatedBy, frontEnd: FrontEndConfig, frontEndHash: String, labels: [String],
                corpora: [CorpusSpec], gds: GDSSettings, options: StoreOptions, segmentShape: [Int], segmentCount: Int,
                totalDurationSeconds: Double, files: [StoredFile], shards: [ShardSummary], perClass: [String: Counts],
                perSpeaker: [String: Counts], gdsTotals: Counts, skipped: [SkippedFile], droppedLabels: [String: Int],
                splits: Splits) {
        self.formatVersion = formatVersion
        self.createdBy = createdBy
        self.frontEnd = frontEnd
        self.frontEndHash = frontEndHash
        self.labels = labels
        self.corpora = corpora
        self.gds = gds
        self.options = options
        self.segmentShape = segmentShape
        self.segmentCount = segmentCount
        self.totalDurationSeconds = totalDurationSeconds
        self.files = files
        self.shards = shards
        self.perClass = perClass
        self.perSpeaker = perSpeaker
        self.gdsTotals = gdsTotals
        self.skipped = skipped
        self.droppedLabels = droppedLabels
        self.splits = splits
    }
}

public struct GDSSettings: Codable, Hashable, Sendable {
    /// With GDS off every segment is kept; scores are still computed and stored.
    public var enabled: Bool
    /// Keep segments with Score > threshold.
    public var threshold: Double
    public init(enabled: Bool, threshold: Double) {
        self.enabled = enabled
        self.threshold = threshold
    }
}

/// The other settings of the run that made the store.
public struct StoreOptions: Codable, Hashable, Sendable {
    public var shards: Int
    public var blockSegments: Int
    public var minDurationSeconds: Double
    public var seed: UInt64
    public var testFraction: Double
    public var resampler: ResamplerQuality
    public init(shards: Int, blockSegments: Int, minDurationSeconds: Double, seed: UInt64, testFraction: Double,
                resampler: ResamplerQuality) {
        self.shards = shards
        self.blockSegments = blockSegments
        self.minDurationSeconds = minDurationSeconds
        self.seed = seed
        self.testFraction = testFraction
        self.resampler = resampler
    }
}

/// One file of the store. Its segments are the global ids `segments` (all of them, kept or not).
public struct StoredFile: Codable, Equatable, Sendable {
    public var id: Int
    public var corpus: Int
    public var corpusKind: CorpusKind
    public var path: String
    public var relativePath: String
    public var label: String
    public var labelIndex: Int
    public var rawLabel: String
    public var speaker: String
    public var durationSeconds: Double
    public var sourceSampleRate: Int
    public var shard: Int
    public var firstSegment: Int
    public var segmentsBefore: Int
    public var segmentsAfter: Int
    public var segmentsRemoved: Int
    public var constantSegments: Int
    /// Time–frequency boxes of the class-telling cue (synthetic corpora; empty otherwise).
    public var cues: [CueRegion]

    public var segments: Range<Int> { firstSegment..<(firstSegment + segmentsBefore) }

    public init(id: Int, corpus: Int, corpusKind: CorpusKind, path: String, relativePath: String, label: String,
                labelIndex: Int, rawLabel: String, speaker: String, durationSeconds: Double, sourceSampleRate: Int,
                shard: Int, firstSegment: Int, segmentsBefore: Int, segmentsAfter: Int, segmentsRemoved: Int,
                constantSegments: Int, cues: [CueRegion]) {
        self.id = id
        self.corpus = corpus
        self.corpusKind = corpusKind
        self.path = path
        self.relativePath = relativePath
        self.label = label
        self.labelIndex = labelIndex
        self.rawLabel = rawLabel
        self.speaker = speaker
        self.durationSeconds = durationSeconds
        self.sourceSampleRate = sourceSampleRate
        self.shard = shard
        self.firstSegment = firstSegment
        self.segmentsBefore = segmentsBefore
        self.segmentsAfter = segmentsAfter
        self.segmentsRemoved = segmentsRemoved
        self.constantSegments = constantSegments
        self.cues = cues
    }
}

public struct ShardSummary: Codable, Equatable, Sendable {
    public var shard: Int
    /// Path relative to the store directory.
    public var file: String
    public var files: Int
    public var firstSegment: Int
    public var segments: Int
    public var kept: Int
    public var bytes: Int
    public var skipped: Int

    public init(shard: Int, file: String, files: Int, firstSegment: Int, segments: Int, kept: Int, bytes: Int, skipped: Int) {
        self.shard = shard
        self.file = file
        self.files = files
        self.firstSegment = firstSegment
        self.segments = segments
        self.kept = kept
        self.bytes = bytes
        self.skipped = skipped
    }
}

public enum SplitKind: String, Codable, CaseIterable, Sendable {
    case random, speaker
}

/// Train/test partitions of file ids. A file is on one side only, so its segments never mix.
public struct Splits: Codable, Equatable, Sendable {
    public var random: Split
    public var speaker: Split

    public init(random: Split, speaker: Split) {
        self.random = random
        self.speaker = speaker
    }
}

public struct Split: Codable, Equatable, Sendable {
    public var train: [Int]
    public var test: [Int]
    /// How it was made (e.g. "stratified by label, seed 1, test fraction 0.15").
    public var method: String
    /// Held-out speakers (speaker split only).
    public var testSpeakers: [String]?

    public init(train: [Int], test: [Int], method: String, testSpeakers: [String]?) {
        self.train = train
        self.test = test
        self.method = method
        self.testSpeakers = testSpeakers
    }
}
