import Foundation

/// Metadata of one stored segment.
public struct SegmentInfo: Equatable, Sendable {
    /// File id (index into `FeatureStore.files`).
    public var file: Int
    public var indexInFile: Int
    /// First log-mel frame of the segment in its file.
    public var startFrame: Int
    /// GDS score; nil for a constant segment (never kept).
    public var gdsScore: Double?
    public var kept: Bool
    public var label: Int
}

/// A finished feature store, opened for reading (layout in docs/FEATURES.md).
///
/// Opening reads the manifest and every shard's index (per-segment metadata: a few bytes per
/// segment); segment data stays on disk until a `SegmentReader` asks for it.
public final class FeatureStore: @unchecked Sendable {
    public let directory: String
    public let manifest: StoreManifest
    private let shardIndexes: [ShardIndex]
    private let shardFirst: [Int]            // global id of each shard's first segment
    private let segFile: [Int32]
    private let segIndex: [Int32]
    private let segStart: [Int32]
    private let segScore: [Double]           // NaN = not scored
    private let segKept: [Bool]

    public var labels: [String] { manifest.labels }
    public var frontEnd: FrontEndConfig { manifest.frontEnd }
    public var segmentCount: Int { manifest.segmentCount }
    public var shardCount: Int { manifest.shards.count }
    public var files: [StoredFile] { manifest.files }
    public var valuesPerSegment: Int { frontEnd.patchFrames * frontEnd.melBands }

    public static func open(_ dir: String) throws -> FeatureStore {
        try FeatureStore(directory: dir)
    }

    private init(directory dir: String) throws {
        let path = dir + "/" + StoreManifest.fileName
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw FileError("\(dir): no such directory (expected a feature store written by `ser preprocess`)")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            let hasShards = FileManager.default.fileExists(atPath: dir + "/shards")
            throw FileError(hasShards
                ? "\(dir): the store is incomplete (no manifest.json: preprocessing did not finish); rerun the same `ser preprocess` command to finish it"
                : "\(dir): not a feature store (no manifest.json); create one with `ser preprocess --out \(dir)`")
        }
        let m: StoreManifest
        do {
            m = try JSONDecoder().decode(StoreManifest.self, from: try readFile(path))
        } catch let e as FileError {
            throw e
        } catch {
            throw FileError("\(path): not a valid store manifest (\(error)); rerun `ser preprocess` to rebuild the store")
        }
        guard m.formatVersion == StoreManifest.formatVersion else {
            throw FileError("\(path): store format version \(m.formatVersion), this ser reads version \(StoreManifest.formatVersion); rerun `ser preprocess`")
        }
        directory = dir
        manifest = m
        var idx: [ShardIndex] = []
        var first: [Int] = []
        var file: [Int32] = [], index: [Int32] = [], start: [Int32] = [], score: [Double] = [], kept: [Bool] = []
        // Shard-local file numbers → store file ids.
        var fileIdsByShard: [Int: [Int]] = [:]
        for f in m.files { fileIdsByShard[f.shard, default: []].append(f.id) }
        for s in m.shards {
            let shardPath = dir + "/" + s.file
            let si = try ShardFile.readIndex(shardPath)
            guard si.frontEndHash == m.frontEndHash, si.shard == s.shard, si.segmentCount == s.segments else {
                throw FileError("\(shardPath): does not belong to this manifest (shard \(si.shard), \(si.segmentCount) segments, front end \(si.frontEndHash)); rerun `ser preprocess`")
            }
            let ids = fileIdsByShard[s.shard] ?? []
            guard ids.count == si.files.count else {
                throw FileError("\(shardPath): lists \(si.files.count) files, the manifest \(ids.count); rerun `ser preprocess`")
            }
            first.append(file.count)
            for k in 0..<si.segmentCount {
                file.append(Int32(ids[si.segments.file[k]]))
                index.append(Int32(si.segments.indexInFile[k]))
                start.append(Int32(si.segments.startFrame[k]))
                score.append(si.segments.score[k] ?? .nan)
                kept.append(si.segments.kept[k])
            }
            idx.append(si)
        }
        guard file.count == m.segmentCount else {
            throw FileError("\(path): says \(m.segmentCount) segments, the shards hold \(file.count); rerun `ser preprocess`")
        }
        shardIndexes = idx
        shardFirst = first
        segFile = file
        segIndex = index
        segStart = start
        segScore = score
        segKept = kept
    }

    /// Global ids of shard `s`'s segments.
    public func segments(inShard s: Int) -> Range<Int> {
        shardFirst[s]..<(shardFirst[s] + shardIndexes[s].segmentCount)
    }

    public func segment(_ id: Int) -> SegmentInfo {
        precondition(id >= 0 && id < segFile.count, "segment \(id) out of range 0..<\(segFile.count)")
        let f = Int(segFile[id])
        let score = segScore[id]
        return SegmentInfo(file: f, indexInFile: Int(segIndex[id]), startFrame: Int(segStart[id]),
                           gdsScore: score.isNaN ? nil : score, kept: segKept[id], label: manifest.files[f].labelIndex)
    }

    /// Ids of the kept segments (or of all of them), in store order.
    public func segmentIDs(keptOnly: Bool = true) -> [Int] {
        keptOnly ? segKept.indices.filter { segKept[$0] } : Array(0..<segKept.count)
    }

    /// Train/test file ids of a split.
    public func split(_ kind: SplitKind) -> (train: [Int], test: [Int]) {
        let s = kind == .random ? manifest.splits.random : manifest.splits.speaker
        return (s.train, s.test)
    }

    /// A reader with its own file handles and block cache: make one per thread.
    public func makeReader(cacheBlocks: Int = 4) -> SegmentReader {
        SegmentReader(store: self, cacheBlocks: cacheBlocks)
    }

    // For SegmentReader.
    func locate(_ id: Int) -> (shard: Int, block: Int, offsetInBlock: Int) {
        // Last shard whose first id ≤ id.
        var lo = 0, hi = shardFirst.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if shardFirst[mid] <= id { lo = mid } else { hi = mid - 1 }
        }
        let local = id - shardFirst[lo]
        let blocks = shardIndexes[lo].blocks
        var b0 = 0, b1 = blocks.count - 1
        while b0 < b1 {
            let mid = (b0 + b1 + 1) / 2
            if blocks[mid].firstSegment <= local { b0 = mid } else { b1 = mid - 1 }
        }
        return (lo, b0, local - blocks[b0].firstSegment)
    }

    func shardIndex(_ s: Int) -> ShardIndex { shardIndexes[s] }
    func shardPath(_ s: Int) -> String { directory + "/" + manifest.shards[s].file }
}

/// Reads segments of a store. Keeps at most `cacheBlocks` decompressed blocks (least recently used
/// goes first), so memory stays bounded however large the store; not thread-safe (one per thread).
public final class SegmentReader {
    public let store: FeatureStore
    private let capacity: Int
    private var fds: [Int: Int32] = [:]
    private var cache: [(key: Int, data: [Float])] = []   // most recent last

    init(store: FeatureStore, cacheBlocks: Int) {
        self.store = store
        capacity = max(1, cacheBlocks)
    }

    deinit { for (_, fd) in fds { close(fd) } }

    /// Copies segment `id` (patchFrames × melBands float32, [frame][band]) into `into`; reads and
    /// decompresses only its block, whose checksum is verified.
    public func read(_ id: Int, into: UnsafeMutablePointer<Float>) throws {
        guard id >= 0 && id < store.segmentCount else { throw FileError("\(store.directory): segment \(id) out of range 0..<\(store.segmentCount)") }
        let (s, b, off) = store.locate(id)
        let key = s << 32 | b
        let per = store.valuesPerSegment
        if let i = cache.firstIndex(where: { $0.key == key }) {
            let entry = cache.remove(at: i)
            cache.append(entry)
        } else {
            let path = store.shardPath(s)
            let fd: Int32
            if let open = fds[s] { fd = open } else {
                fd = Foundation.open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw FileError("\(path): cannot open (\(String(cString: strerror(errno))))") }
                fds[s] = fd
            }
            let idx = store.shardIndex(s)
            let raw = try ShardFile.readBlock(fd: fd, path: path, block: b, idx.blocks[b], valuesPerSegment: per)
            let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            if cache.count >= capacity { cache.removeFirst() }
            cache.append((key, values))
        }
        cache[cache.count - 1].data.withUnsafeBufferPointer { buf in
            into.update(from: buf.baseAddress! + off * per, count: per)
        }
    }

    public func read(_ id: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: store.valuesPerSegment)
        try out.withUnsafeMutableBufferPointer { try read(id, into: $0.baseAddress!) }
        return out
    }
}
