import Foundation

public struct FileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Writes that never leave a half-written file behind.
///
/// The bytes go to a temporary file in the same directory, which is flushed to disk, renamed over
/// the destination and followed by a flush of the directory entry. A crash at any point leaves
/// either the old file or the new one, never a mixture.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { fd in
            try data.withUnsafeBytes { raw in try writeAll(fd: fd, raw, path: path) }
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// Writes through `body(fd)` into a temporary file and publishes it atomically.
    public static func write(to path: String, _ body: (Int32) throws -> Void) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        try makeDirectory(dir.isEmpty ? "." : dir)
        let tmp = (dir.isEmpty ? "." : dir) + "/.\(base).tmp.\(getpid()).\(UInt32.random(in: 0 ... .max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError("\(path): cannot create a temporary file in \(dir) (\(String(cString: strerror(errno))))") }
        do {
            try body(fd)
            guard fsync(fd) == 0 else { throw FileError("\(path): fsync failed (\(String(cString: strerror(errno))))") }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw FileError("\(path): cannot rename the finished file into place (\(reason))")
        }
        syncDirectory(dir.isEmpty ? "." : dir)
    }

    static func writeAll(fd: Int32, _ raw: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < raw.count {
            let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError("\(path): write failed after \(done) bytes (\(String(cString: strerror(errno))))")
            }
            done += n
        }
    }

    /// Flushes a directory's entries (a rename is durable only after this).
    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    public static func makeDirectory(_ dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw FileError("\(dir): cannot create directory (\(error.localizedDescription))")
        }
    }
}

/// Reads a whole file, with an error that names it. (Not memory-mapped: on Linux, Foundation
/// writes a mutated copy of mapped Data into the read-only mapping and crashes.)
public func readFile(_ path: String) throws -> Data {
    guard FileManager.default.fileExists(atPath: path) else { throw FileError("\(path): no such file") }
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw FileError("\(path): cannot read (\(error.localizedDescription))")
    }
}
