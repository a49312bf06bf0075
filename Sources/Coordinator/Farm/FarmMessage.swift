import Foundation
import Shared
import Worker

/// Tags of the farm protocol (point-to-point messages between rank 0 and the workers).
///
///     worker → 0   request   "I am ready" (first message of a worker)
///     0 → worker   task      one task: its index in rank 0's list and its description (JSON)
///     worker → 0   result    a finished task (its files, or why it failed); also asks for more
///     0 → worker   stop      no task left for this worker: leave the loop
enum FarmTag {
    static let request = 7101
    static let task = 7102
    static let result = 7103
    static let stop = 7104
}

/// A finished (or failed) task on its way to rank 0, which writes its files.
struct FarmResult {
    var index: Int
    var ok: Bool
    var reason: String?
    var seconds: Double
    var rank: Int
    /// Written under the output folder by rank 0, in order (a task's JSON summary comes last).
    var files: [TaskOutput]

    struct Header: Codable {
        var index: Int
        var ok: Bool
        var reason: String?
        var seconds: Double
        var rank: Int
        var names: [String]
        var sizes: [Int]
    }

    /// [UInt32 little-endian header length][header JSON][file bytes, back to back].
    func encode() -> [UInt8] {
        let header = Header(index: index, ok: ok, reason: reason, seconds: seconds, rank: rank,
                            names: files.map(\.name), sizes: files.map(\.data.count))
        let h = (try? JSONEncoder().encode(header)) ?? Data()
        var out = [UInt8]()
        out.reserveCapacity(4 + h.count + files.reduce(0) { $0 + $1.data.count })
        withUnsafeBytes(of: UInt32(h.count).littleEndian) { out += $0 }
        out += h
        for f in files { out += f.data }
        return out
    }

    static func decode(_ bytes: [UInt8]) throws -> FarmResult {
        guard bytes.count >= 4 else { throw FileError("farm: a result message of \(bytes.count) bytes (truncated)") }
        let n = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard bytes.count >= 4 + n else { throw FileError("farm: a result message shorter than its header") }
        let header = try JSONDecoder().decode(Header.self, from: Data(bytes[4 ..< 4 + n]))
        guard header.names.count == header.sizes.count, 4 + n + header.sizes.reduce(0, +) == bytes.count else {
            throw FileError("farm: a result message whose files do not add up to its length")
        }
        var offset = 4 + n
        var files: [TaskOutput] = []
        for (name, size) in zip(header.names, header.sizes) {
            files.append(TaskOutput(name: name, data: Data(bytes[offset ..< offset + size])))
            offset += size
        }
        return FarmResult(index: header.index, ok: header.ok, reason: header.reason, seconds: header.seconds,
                          rank: header.rank, files: files)
    }
}

/// A task as sent to a worker.
struct FarmAssignment<Task: Codable>: Codable {
    var index: Int
    var task: Task
}
