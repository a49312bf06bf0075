import CSampleRate
import CSndFile
import Foundation

/// A decoded clip: mono float32 samples in [-1, 1].
public struct AudioClip: Sendable {
    public var samples: [Float]
    public var sampleRate: Int
    /// Channels of the source before the mono mix.
    public var channels: Int
    public var duration: Double { sampleRate > 0 ? Double(samples.count) / Double(sampleRate) : 0 }

    public init(samples: [Float], sampleRate: Int, channels: Int = 1) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.channels = channels
    }
}

/// What a file's header says, without decoding it.
public struct AudioFileInfo: Sendable, Equatable {
    public var frames: Int
    public var sampleRate: Int
    public var channels: Int
    public var duration: Double { sampleRate > 0 ? Double(frames) / Double(sampleRate) : 0 }
    public init(frames: Int, sampleRate: Int, channels: Int) {
        self.frames = frames
        self.sampleRate = sampleRate
        self.channels = channels
    }
}

/// The sinc converters of libsamplerate, best first.
public enum ResamplerQuality: String, CaseIterable, Codable, Sendable {
    case best, medium, fastest
    var converter: Int32 {
        switch self {
        case .best: return Int32(SRC_SINC_BEST_QUALITY)
        case .medium: return Int32(SRC_SINC_MEDIUM_QUALITY)
        case .fastest: return Int32(SRC_SINC_FASTEST)
        }
    }
}

/// Reading any format libsndfile supports (WAV, FLAC, OGG, AIFF, …), writing WAV and FLAC.
public enum AudioFile {
    /// Extensions treated as audio when scanning corpus folders.
    public static let extensions: Set<String> = ["wav", "flac", "ogg", "oga", "opus", "aif", "aiff", "aifc", "au", "snd", "caf", "w64", "rf64", "mp3"]

    private static func open(_ path: String, _ info: inout SF_INFO) throws -> OpaquePointer {
        guard FileManager.default.fileExists(atPath: path) else { throw FileError("\(path): no such file") }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber, size.intValue == 0 {
            throw FileError("\(path): empty (0 bytes)")
        }
        guard let f = sf_open(path, Int32(SFM_READ), &info) else {
            let reason = String(cString: sf_strerror(nil))
            throw FileError("\(path): not a readable audio file (\(reason))")
        }
        return f
    }

    /// The header: frame count, rate and channels (cheap: no samples are decoded).
    public static func info(_ path: String) throws -> AudioFileInfo {
        var info = SF_INFO()
        let f = try open(path, &info)
        sf_close(f)
        return AudioFileInfo(frames: Int(info.frames), sampleRate: Int(info.samplerate), channels: Int(info.channels))
    }

    /// Decodes the whole file and mixes its channels to mono (their mean).
    public static func read(_ path: String) throws -> AudioClip {
        var info = SF_INFO()
        let f = try open(path, &info)
        defer { sf_close(f) }
        let channels = Int(info.channels), frames = Int(info.frames)
        guard channels > 0, info.samplerate > 0 else { throw FileError("\(path): the header gives \(channels) channels at \(info.samplerate) Hz") }
        guard frames > 0 else { throw FileError("\(path): empty (the file holds no audio frames)") }
        var interleaved = [Float](repeating: 0, count: frames * channels)
        let got = interleaved.withUnsafeMutableBufferPointer { sf_readf_float(f, $0.baseAddress, sf_count_t(frames)) }
        if got < frames {
            let reason = sf_error(f) != 0 ? String(cString: sf_strerror(f)) : "the data ends early"
            throw FileError("\(path): truncated or corrupt audio: decoded \(got) of the \(frames) frames its header announces (\(reason))")
        }
        var mono: [Float]
        if channels == 1 {
            mono = interleaved
        } else {
            mono = [Float](repeating: 0, count: frames)
            let scale = 1 / Float(channels)
            interleaved.withUnsafeBufferPointer { src in
                for i in 0..<frames {
                    var s: Float = 0
                    for c in 0..<channels { s += src[i * channels + c] }
                    mono[i] = s * scale
                }
            }
        }
        if let bad = mono.firstIndex(where: { !$0.isFinite }) {
            throw FileError("\(path): sample \(bad) is not a finite number (corrupt float data)")
        }
        return AudioClip(samples: mono, sampleRate: Int(info.samplerate), channels: channels)
    }

    /// Decodes, mixes to mono and resamples to `rate` (libsamplerate; unchanged if already at `rate`).
    public static func read(_ path: String, resampledTo rate: Int, quality: ResamplerQuality = .best) throws -> AudioClip {
        var clip = try read(path)
        if clip.sampleRate != rate {
            clip.samples = try resample(clip.samples, from: clip.sampleRate, to: rate, quality: quality)
            clip.sampleRate = rate
        }
        return clip
    }

    /// Band-limited sinc resampling. SRC_SINC_BEST_QUALITY (the default) keeps the pass band flat to
    /// within 0.01 dB up to 96 % of the new Nyquist frequency with 97 dB stop-band rejection, so the
    /// mel bands up to 7.5 kHz see the same spectrum whatever the source rate.
    public static func resample(_ samples: [Float], from source: Int, to rate: Int, quality: ResamplerQuality = .best) throws -> [Float] {
        guard source != rate else { return samples }
        guard !samples.isEmpty else { return [] }
        let ratio = Double(rate) / Double(source)
        let capacity = Int((Double(samples.count) * ratio).rounded(.up)) + 64
        var out = [Float](repeating: 0, count: capacity)
        var produced = 0
        let status: Int32 = samples.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var data = SRC_DATA()
                data.data_in = src.baseAddress
                data.data_out = dst.baseAddress
                data.input_frames = samples.count
                data.output_frames = capacity
                data.src_ratio = ratio
                data.end_of_input = 1
                let r = src_simple(&data, quality.converter, 1)
                produced = Int(data.output_frames_gen)
                return r
            }
        }
        guard status == 0 else {
            throw FileError("resampling \(source) Hz → \(rate) Hz failed: \(String(cString: src_strerror(status)))")
        }
        out.removeSubrange(produced...)
        return out
    }

    /// Writes mono samples as 16-bit PCM, WAV or FLAC by the extension, atomically (the file
    /// appears complete or not at all). Samples outside [-1, 1] are clipped.
    public static func write(_ path: String, samples: [Float], sampleRate: Int) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        let container: Int32
        switch ext {
        case "wav": container = Int32(SF_FORMAT_WAV)
        case "flac": container = Int32(SF_FORMAT_FLAC)
        default: throw FileError("\(path): unsupported extension '.\(ext)' for writing (use .wav or .flac)")
        }
        try AtomicFile.write(to: path) { fd in
            var info = SF_INFO()
            info.samplerate = Int32(sampleRate)
            info.channels = 1
            info.format = container | Int32(SF_FORMAT_PCM_16)
            guard let f = sf_open_fd(fd, Int32(SFM_WRITE), &info, 0) else {
                throw FileError("\(path): cannot write audio (\(String(cString: sf_strerror(nil))))")
            }
            sf_command(f, Int32(SFC_SET_CLIPPING), nil, 1)
            let n = samples.withUnsafeBufferPointer { sf_writef_float(f, $0.baseAddress, sf_count_t(samples.count)) }
            let err = sf_error(f) != 0 ? String(cString: sf_strerror(f)) : ""
            sf_close(f)
            if n != samples.count { throw FileError("\(path): wrote \(n) of \(samples.count) frames (\(err))") }
        }
    }
}
