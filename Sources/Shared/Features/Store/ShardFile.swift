import Foundation

/// One shard of a feature store: `shards/shard-NNNNN.seg` (layout in docs/FEATURES.md).
///
///     header   16 bytes   "SERSHARD", format version (u32 LE), 0 (u32)
///     blocks   zstd frames, each up to `blockSegments` segments of patchFrames × melBands float32 LE,
///              row-major [frame][band], segments in shard order
///     index    JSON (`ShardIndex`): files, per-segment metadata, blocks with offset, length and the
///              XXH64 of the uncompressed bytes
///     trailer  40 bytes   index offset (u64), index length (u64), index XXH64 (u64), format version
///              (u32), 0 (u32), "SERSHRD\0"
///
/// The trailer is fixed-size at the end, so a reader finds the index with one seek, and any
/// segment is read by decompressing only its block.
public enum ShardFile {
    public static let formatVersion = 1
    static let headerMagic = Array("SERSHARD".utf8)
    static let trailerMagic: [UInt8] = Array("SERSHRD".utf8) + [0]
    public static let headerSize = 16
    public static let trailerSize = 40

    public static func name(_ shard: Int) -> String { String(format: "shard-%05d.seg", shard) }

    /// Reads and checks the trailer and the index (not the blocks).
    public static func readIndex(_ path: String) throws -> ShardIndex {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size >= headerSize + trailerSize else { throw FileError("\(path): \(size) bytes, too short to be a shard (truncated?)") }
        let head = try pread(fd, at: 0, count: headerSize, path: path)
        guard Array(head[0..<8]) == headerMagic else { throw FileError("\(path): not a feature shard (bad magic at the start)") }
        let tail = try pread(fd, at: size - trailerSize, count: trailerSize, path: path)
        guard Array(tail[32..<40]) == trailerMagic else { throw FileError("\(path): no shard trailer at the end (the file is truncated or was not finished)") }
        let (offset, length, hash, version) = tail.withUnsafeBytes { r in
            (Int(UInt64(littleEndian: r.loadUnaligned(fromByteOffset: 0, as: UInt64.self))),
             Int(UInt64(littleEndian: r.loadUnaligned(fromByteOffset: 8, as: UInt64.self))),
             UInt64(littleEndian: r.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
             Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: 24, as: UInt32.self))))
        }
        guard version == formatVersion else { throw FileError("\(path): shard format version \(version), this ser reads version \(formatVersion); rerun `ser preprocess` to rebuild the store") }
        guard offset >= headerSize, length > 0, offset + length == size - trailerSize else {
            throw FileError("\(path): corrupt trailer (index at \(offset), \(length) bytes, file \(size) bytes)")
        }
        let json = try pread(fd, at: offset, count: length, path: path)
        guard XXHash64.hash(json) == hash else { throw FileError("\(path): the shard index fails its XXH64 checksum (corrupt file); rerun `ser preprocess` to rebuild it") }
        do {
            return try JSONDecoder().decode(ShardIndex.self, from: json)
        } catch {
            throw FileError("\(path): the shard index is not valid JSON for this version (\(error))")
        }
    }

    /// Decompresses every block and checks its length and XXH64.
    public static func verifyBlocks(_ path: String, _ index: ShardIndex) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        for (b, block) in index.blocks.enumerated() {
            _ = try readBlock(fd: fd, path: path, block: b, block, valuesPerSegment: index.valuesPerSegment)
        }
    }

    /// The uncompressed bytes of block `b`, checked.
    static func readBlock(fd: Int32, path: String, block b: Int, _ block: ShardBlock, valuesPerSegment: Int) throws -> Data {
        let packed = try pread(fd, at: block.offset, count: block.length, path: path)
        let raw = try Zstd.decompress(packed, source: "\(path) block \(b)")
        guard raw.count == block.count * valuesPerSegment * 4 else {
            throw FileError("\(path) block \(b): \(raw.count) bytes, expected \(block.count) segments of \(valuesPerSegment) floats")
        }
        guard XXHash64.hex(XXHash64.hash(raw)) == block.xxh64 else {
            throw FileError("\(path) block \(b): fails its XXH64 checksum (corrupt data); rerun `ser preprocess` to rebuild the shard")
        }
        return raw
    }

    static func pread(_ fd: Int32, at offset: Int, count: Int, path: String) throws -> Data {
        var d = Data(count: count)
        var done = 0
        try d.withUnsafeMutableBytes { buf in
            while done < count {
                let n = Foundation.pread(fd, buf.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError("\(path): read failed at byte \(offset + done) (\(String(cString: strerror(errno))))")
                }
                if n == 0 { throw FileError("\(path): ends at byte \(offset + done), expected \(count) bytes from \(offset) (truncated)") }
                done += n
            }
        }
        return d
    }
}

/// The index of one shard (JSON inside the shard file).
public struct ShardIndex: Codable, Equatable, Sendable {
    public var formatVersion: Int
    public var shard: Int
    public var frontEndHash: String
    /// Hash of every setting that changes the shard's content (front end, GDS, block size, resampler).
    public var settingsHash: String
    public var patchFrames: Int
    public var melBands: Int
    /// The files assigned to this shard, in canonical order, as "path|frames|sample rate" (resume
    /// compares it).
    public var assigned: [String]
    /// Files that produced segments, in shard order.
    public var files: [ShardFileRecord]
    /// Assigned files that could not be used, with the reason.
    public var skipped: [SkippedFile]
    public var segments: ShardSegments
    public var blocks: [ShardBlock]

    public var valuesPerSegment: Int { patchFrames * melBands }
    public var segmentCount: Int { segments.file.count }
}

/// What a shard records about one of its files.
public struct ShardFileRecord: Codable, Equatable, Sendable {
    /// Position in the canonical file list of the run.
    public var canonical: Int
    public var path: String
    public var durationSeconds: Double
    public var sourceSampleRate: Int
    public var channels: Int
    /// First segment (shard-local) and number of segments.
    public var firstSegment: Int
    public var segmentsBefore: Int
    public var segmentsAfter: Int
    /// Segments left unscored because they are constant (counted in segmentsBefore − segmentsAfter).
    public var constantSegments: Int

    public init(canonical: Int, path: String, durationSeconds: Double, sourceSampleRate: Int, channels: Int,
                firstSegment: Int = 0, segmentsBefore: Int = 0, segmentsAfter: Int = 0, constantSegments: Int = 0) {
        self.canonical = canonical
        self.path = path
        self.durationSeconds = durationSeconds
        self.sourceSampleRate = sourceSampleRate
        self.channels = channels
        self.firstSegment = firstSegment
        self.segmentsBefore = segmentsBefore
        self.segmentsAfter = segmentsAfter
        self.constantSegments = constantSegments
    }
}

/// Per-segment metadata, one array per field (compact JSON).
public struct ShardSegments: Codable, Equatable, Sendable {
    /// Index into the shard's `files`.
    public var file: [Int] = []
    public var indexInFile: [Int] = []
    public var startFrame: [Int] = []
    /// GDS score (nil for a constant segment, which is not scored and not kept).
    public var score: [Double?] = []
    public var kept: [Bool] = []
    public init() {}
}

public struct ShardBlock: Codable, Equatable, Sendable {
    public var offset: Int
    public var length: Int
    public var firstSegment: Int
    public var count: Int
    /// XXH64 of the uncompressed bytes, 16 hex digits.
    public var xxh64: String
}

/// Streams a shard to disk: blocks are compressed and written as segments arrive, so memory stays
/// at one block whatever the shard's size. The file appears under its final name only when
/// `finish()` has written the index and trailer and flushed everything (temporary name, fsync,
/// rename, directory fsync): an interrupted run never leaves a shard that looks complete.
public final class ShardWriter {
    public let path: String
    private let tmp: String
    private let fd: Int32
    private var offset = 0
    private var index: ShardIndex
    private let blockSegments: Int
    private let level: Int32
    private var pending: [Float] = []
    private var pendingFirst = 0
    private var finished = false

    public init(path: String, shard: Int, frontEnd: FrontEndConfig, settingsHash: String, assigned: [String],
                blockSegments: Int, level: Int32 = 3) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        tmp = dir + "/." + (path as NSString).lastPathComponent + ".tmp.\(getpid())"
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError("\(path): cannot create \(tmp) (\(String(cString: strerror(errno))))") }
        self.blockSegments = blockSegments
        self.level = level
        index = ShardIndex(formatVersion: ShardFile.formatVersion, shard: shard, frontEndHash: frontEnd.hash, settingsHash: settingsHash,
                           patchFrames: frontEnd.patchFrames, melBands: frontEnd.melBands, assigned: assigned,
                           files: [], skipped: [], segments: ShardSegments(), blocks: [])
        var header = ShardFile.headerMagic
        withUnsafeBytes(of: UInt32(ShardFile.formatVersion).littleEndian) { header += $0 }
        header += [0, 0, 0, 0]
        try write(Data(header))
    }

    deinit {
        if !finished {
            close(fd)
            unlink(tmp)
        }
    }

    private func write(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError("\(path): write failed (\(String(cString: strerror(errno))))")
                }
                done += n
            }
        }
        offset += data.count
    }

    /// Appends one file's segments (count × valuesPerSegment floats) with their GDS outcome.
    public func add(_ record: ShardFileRecord, segments values: UnsafeBufferPointer<Float>, startFrames: [Int], gds: GaussianDataSelection.Result) throws {
        let per = index.valuesPerSegment
        let count = startFrames.count
        precondition(values.count == count * per && gds.kept.count == count, "segment data does not match its metadata")
        var rec = record
        rec.firstSegment = index.segmentCount
        rec.segmentsBefore = count
        rec.segmentsAfter = gds.after
        rec.constantSegments = gds.scores.filter { $0 == nil }.count
        let f = index.files.count
        index.files.append(rec)
        for i in 0..<count {
            index.segments.file.append(f)
            index.segments.indexInFile.append(i)
            index.segments.startFrame.append(startFrames[i])
            index.segments.score.append(gds.scores[i])
            index.segments.kept.append(gds.kept[i])
        }
        var i = 0
        while i < count {
            let room = blockSegments - pending.count / per
            let take = min(room, count - i)
            pending.append(contentsOf: UnsafeBufferPointer(rebasing: values[(i * per)..<((i + take) * per)]))
            i += take
            if pending.count / per == blockSegments { try flushBlock() }
        }
    }

    public func skip(_ file: SkippedFile) { index.skipped.append(file) }

    private func flushBlock() throws {
        let n = pending.count / index.valuesPerSegment
        guard n > 0 else { return }
        let (packed, hash) = try pending.withUnsafeBytes { raw in (try Zstd.compress(raw, level: level), XXHash64.hash(raw)) }
        index.blocks.append(ShardBlock(offset: offset, length: packed.count, firstSegment: pendingFirst, count: n, xxh64: XXHash64.hex(hash)))
        try write(packed)
        pendingFirst += n
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes the last block, the index and the trailer, and publishes the file atomically.
    @discardableResult
    public func finish() throws -> ShardIndex {
        try flushBlock()
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = try enc.encode(index)
        let indexOffset = offset
        try write(json)
        var trailer = Data()
        for v in [UInt64(indexOffset), UInt64(json.count), XXHash64.hash(json)] { withUnsafeBytes(of: v.littleEndian) { trailer.append(contentsOf: $0) } }
        withUnsafeBytes(of: UInt32(ShardFile.formatVersion).littleEndian) { trailer.append(contentsOf: $0) }
        trailer.append(contentsOf: [0, 0, 0, 0])
        trailer.append(contentsOf: ShardFile.trailerMagic)
        try write(trailer)
        guard fsync(fd) == 0 else { throw FileError("\(path): fsync failed (\(String(cString: strerror(errno))))") }
        close(fd)
        finished = true
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw FileError("\(path): cannot move the finished shard into place (\(reason))")
        }
        AtomicFile.syncDirectory((path as NSString).deletingLastPathComponent)
        return index
    }
}
