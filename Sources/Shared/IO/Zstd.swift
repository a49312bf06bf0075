import CZstd
import Foundation

/// zstd compression for feature shards and checkpoints.
///
/// Frames carry zstd's own content checksum (verified on decompression) and the content size, so
/// `zstd -d` on the command line opens every file written here.
public enum Zstd {
    public static var version: String { String(cString: ZSTD_versionString()) }

    /// Compresses `input` into one frame. `threads` > 1 uses zstd's worker threads.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 3, threads: Int = 1) throws -> Data {
        guard let cctx = ZSTD_createCCtx() else { throw FileError("zstd: cannot allocate a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
        if threads > 1 { ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(threads)) }
        ZSTD_CCtx_setPledgedSrcSize(cctx, UInt64(input.count))
        let bound = ZSTD_compressBound(input.count)
        var out = Data(count: bound)
        let written = out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(cctx, dst.baseAddress, bound, input.baseAddress, input.count)
        }
        if ZSTD_isError(written) != 0 {
            throw FileError("zstd: compression failed (\(String(cString: ZSTD_getErrorName(written))))")
        }
        out.count = written
        return out
    }

    public static func compress(_ input: Data, level: Int32 = 3, threads: Int = 1) throws -> Data {
        try input.withUnsafeBytes { try compress($0, level: level, threads: threads) }
    }

    /// Decompresses one or more frames; fails (naming `source`) on corruption or truncation.
    public static func decompress(_ input: Data, source: String = "zstd data") throws -> Data {
        try input.withUnsafeBytes { src -> Data in
            guard let base = src.baseAddress, src.count > 0 else { throw FileError("\(source): empty, not a zstd frame") }
            guard let dctx = ZSTD_createDCtx() else { throw FileError("zstd: cannot allocate a decompression context") }
            defer { ZSTD_freeDCtx(dctx) }
            let total = ZSTD_getFrameContentSize(base, src.count)
            if total == ZSTD_CONTENTSIZE_ERROR {
                throw FileError("\(source): not a zstd frame (corrupt header)")
            }
            let frameBytes = ZSTD_findFrameCompressedSize(base, src.count)
            if ZSTD_isError(frameBytes) != 0 {
                throw FileError("\(source): truncated or corrupt zstd frame (\(String(cString: ZSTD_getErrorName(frameBytes))))")
            }
            // One frame with a known size (what this project writes): decode in one call.
            if total != ZSTD_CONTENTSIZE_UNKNOWN && frameBytes == src.count {
                var out = Data(count: Int(total))
                let r = out.withUnsafeMutableBytes { dst in
                    ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, base, src.count)
                }
                if ZSTD_isError(r) != 0 {
                    throw FileError("\(source): corrupt zstd data (\(String(cString: ZSTD_getErrorName(r))))")
                }
                guard r == Int(total) else { throw FileError("\(source): decompressed \(r) bytes but the frame says \(total)") }
                return out
            }
            // Frames written without a content size (by other tools): stream.
            var out = Data()
            var inBuf = ZSTD_inBuffer(src: base, size: src.count, pos: 0)
            let chunk = ZSTD_DStreamOutSize()
            var tmp = [UInt8](repeating: 0, count: chunk)
            while true {
                var pending = 0
                let produced = try tmp.withUnsafeMutableBytes { t -> Int in
                    var outBuf = ZSTD_outBuffer(dst: t.baseAddress, size: chunk, pos: 0)
                    let r = ZSTD_decompressStream(dctx, &outBuf, &inBuf)
                    if ZSTD_isError(r) != 0 {
                        throw FileError("\(source): corrupt zstd data (\(String(cString: ZSTD_getErrorName(r))))")
                    }
                    pending = r
                    return outBuf.pos
                }
                out.append(contentsOf: tmp[0..<produced])
                if inBuf.pos == inBuf.size && produced < chunk {
                    if pending != 0 { throw FileError("\(source): truncated zstd data (the frame does not end)") }
                    return out
                }
            }
        }
    }
}
