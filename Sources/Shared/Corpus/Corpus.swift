import Foundation

/// The corpus layouts `ser preprocess --corpus KIND:PATH` reads.
public enum CorpusKind: String, Codable, CaseIterable, Sendable {
    case emodb, ravdess, cremad, tess, casia, csv, synth

    public var layout: String {
        switch self {
        case .emodb: return "EmoDB: files like 03a01Wa.wav anywhere under PATH; 6th character = emotion (W A F T N E L), first two = speaker"
        case .ravdess: return "RAVDESS: files like 03-01-05-01-02-01-12.wav; 3rd field = emotion (01 neutral … 08 surprised), 7th = actor"
        case .cremad: return "CREMA-D: files like 1001_DFA_ANG_XX.wav; 3rd field = emotion (ANG DIS FEA HAP NEU SAD), 1st = actor"
        case .tess: return "TESS: files like OAF_back_angry.wav (last field = emotion, 'ps' = surprise), first field = speaker (OAF/YAF)"
        case .casia: return "CASIA: PATH/<speaker>/<emotion>/<n>.wav"
        case .csv: return "CSV: PATH is a CSV file with header path,label,speaker; relative paths are relative to the CSV's folder"
        case .synth: return "synth: the folder `ser synth` wrote (its manifest.csv and cues.csv)"
        }
    }
}

/// `KIND:PATH` as given on the command line.
public struct CorpusSpec: Codable, Hashable, Sendable {
    public var kind: CorpusKind
    public var path: String

    public init(kind: CorpusKind, path: String) {
        self.kind = kind
        self.path = path
    }

    public init(parsing text: String) throws {
        guard let colon = text.firstIndex(of: ":") else {
            throw FileError("--corpus '\(text)': expected KIND:PATH with KIND one of \(CorpusKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let k = String(text[..<colon]).lowercased(), p = String(text[text.index(after: colon)...])
        guard let kind = CorpusKind(rawValue: k) else {
            throw FileError("--corpus '\(text)': unknown corpus kind '\(k)'; use one of \(CorpusKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard !p.isEmpty else { throw FileError("--corpus '\(text)': the path after '\(k):' is empty") }
        self.kind = kind
        self.path = URL(fileURLWithPath: p).standardizedFileURL.path
    }
}

/// A time–frequency box where a file's class-telling cue lies (synthetic corpora).
public struct CueRegion: Codable, Hashable, Sendable {
    public var t0: Double, t1: Double, f0: Double, f1: Double
    public init(t0: Double, t1: Double, f0: Double, f1: Double) {
        self.t0 = t0; self.t1 = t1; self.f0 = f0; self.f1 = f1
    }
}

/// One audio file of a corpus, before decoding.
public struct CorpusEntry: Codable, Hashable, Sendable {
    /// Position of its corpus in the --corpus list.
    public var corpus: Int
    public var kind: CorpusKind
    /// Absolute path.
    public var path: String
    /// Path relative to the corpus root (or as written in the CSV): the canonical sort key.
    public var relativePath: String
    /// The label as the corpus writes it (a letter, a code, a folder name).
    public var rawLabel: String
    /// Canonical emotion name (nil: the label is not one we know).
    public var emotion: String?
    /// Corpus-prefixed speaker id, e.g. "emodb:03".
    public var speaker: String
    public var cues: [CueRegion]
}

/// A file that was left out, and why (listed in the manifest and by `ser store info`).
public struct SkippedFile: Codable, Hashable, Sendable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Finds the audio files of a corpus and reads their labels and speakers from names and folders.
public enum CorpusScanner {
    public struct Outcome: Sendable {
        public var entries: [CorpusEntry] = []
        public var skipped: [SkippedFile] = []
    }

    static let emodbCodes = ["W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"]
    static let ravdessCodes = ["01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fear", "07": "disgust", "08": "surprise"]
    static let cremadCodes = ["ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"]

    /// Scans corpus number `index`; entries come sorted by relative path.
    public static func scan(_ spec: CorpusSpec, index: Int) -> Outcome {
        var out = Outcome()
        switch spec.kind {
        case .csv:
            readCSVManifest(spec, index: index, into: &out)
        case .synth:
            readSynth(spec, index: index, into: &out)
        default:
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: spec.path, isDirectory: &isDir), isDir.boolValue else {
                out.skipped.append(SkippedFile(path: spec.path, reason: "corpus folder does not exist (--corpus \(spec.kind.rawValue):\(spec.path))"))
                return out
            }
            for rel in audioFiles(under: spec.path) {
                let path = spec.path + "/" + rel
                switch parse(kind: spec.kind, relativePath: rel) {
                case .success(let (raw, emotion, speaker)):
                    out.entries.append(CorpusEntry(corpus: index, kind: spec.kind, path: path, relativePath: rel, rawLabel: raw,
                                                   emotion: emotion, speaker: "\(spec.kind.rawValue):\(speaker)", cues: []))
                case .failure(let e):
                    out.skipped.append(SkippedFile(path: path, reason: e.description))
                }
            }
        }
        out.entries.sort { $0.relativePath.utf8.lexicographicallyPrecedes($1.relativePath.utf8) }
        return out
    }

    /// Audio files below `root` (relative paths, sorted byte-wise), by extension.
    static func audioFiles(under root: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            let name = (rel as NSString).lastPathComponent
            if name.hasPrefix(".") { continue }
            if AudioFile.extensions.contains((rel as NSString).pathExtension.lowercased()) { out.append(rel) }
        }
        return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// (raw label, canonical emotion or nil, speaker without prefix) from a file's relative path.
    static func parse(kind: CorpusKind, relativePath rel: String) -> Result<(String, String?, String), FileError> {
        let name = ((rel as NSString).lastPathComponent as NSString).deletingPathExtension
        let parts = rel.split(separator: "/").map(String.init)
        switch kind {
        case .emodb:
            let chars = Array(name)
            guard chars.count >= 6, chars[0].isNumber, chars[1].isNumber else {
                return .failure(FileError("name '\(name)' does not follow the EmoDB pattern (e.g. 03a01Wa: speaker 03, emotion W)"))
            }
            let code = String(chars[5])
            return .success((code, emodbCodes[code.uppercased()], String(chars[0...1])))
        case .ravdess:
            let f = name.split(separator: "-").map(String.init)
            guard f.count == 7 else {
                return .failure(FileError("name '\(name)' does not follow the RAVDESS pattern (7 fields like 03-01-05-01-02-01-12)"))
            }
            return .success((f[2], ravdessCodes[f[2]], f[6]))
        case .cremad:
            let f = name.split(separator: "_").map(String.init)
            guard f.count >= 3 else {
                return .failure(FileError("name '\(name)' does not follow the CREMA-D pattern (e.g. 1001_DFA_ANG_XX)"))
            }
            return .success((f[2], cremadCodes[f[2].uppercased()], f[0]))
        case .tess:
            let f = name.split(separator: "_").map(String.init)
            guard f.count >= 3 else {
                return .failure(FileError("name '\(name)' does not follow the TESS pattern (e.g. OAF_back_angry)"))
            }
            // The emotion is what follows the word: "angry", "ps", or "pleasant_surprise".
            let tail = f[2...].joined(separator: "_")
            var emotion = Emotion.canonicalName(tail) ?? Emotion.canonicalName(f.last!)
            if emotion == nil, parts.count >= 2 {
                // Folder names like "OAF_Pleasant_surprise".
                let folder = parts[parts.count - 2].split(separator: "_").dropFirst().joined(separator: "_")
                emotion = Emotion.canonicalName(folder)
            }
            return .success((tail, emotion, f[0].uppercased()))
        case .casia:
            guard parts.count >= 3 else {
                return .failure(FileError("path '\(rel)' does not follow the CASIA layout <speaker>/<emotion>/<file>"))
            }
            let folder = parts[parts.count - 2]
            return .success((folder, Emotion.canonicalName(folder), parts[parts.count - 3]))
        case .csv, .synth:
            return .failure(FileError("internal: \(kind) is not a folder layout"))
        }
    }

    /// Splits one CSV line (RFC 4180 quotes).
    static func csvFields(_ line: Substring) -> [String] {
        var fields: [String] = []
        var cur = ""
        var quoted = false
        var it = line.makeIterator()
        while let ch = it.next() {
            if quoted {
                if ch == "\"" {
                    if let nx = it.next() {
                        if nx == "\"" { cur.append("\"") } else { quoted = false; if nx == "," { fields.append(cur); cur = "" } else { cur.append(nx) } }
                    } else { quoted = false }
                } else { cur.append(ch) }
            } else if ch == "\"" { quoted = true } else if ch == "," { fields.append(cur); cur = "" } else { cur.append(ch) }
        }
        fields.append(cur)
        return fields.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Rows of a CSV file with a header naming `required` columns (in any order).
    static func readCSV(_ path: String, required: [String]) throws -> [(line: Int, fields: [String: String])] {
        guard FileManager.default.fileExists(atPath: path) else { throw FileError("\(path): no such file") }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw FileError("\(path): not readable as UTF-8 text") }
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard let header = lines.first.map(csvFields) else { throw FileError("\(path): empty, expected a header line \(required.joined(separator: ","))") }
        let cols = header.map { $0.lowercased() }
        for r in required where !cols.contains(r) {
            throw FileError("\(path): the header has no '\(r)' column (found: \(header.joined(separator: ",")); expected \(required.joined(separator: ",")))")
        }
        var rows: [(Int, [String: String])] = []
        for (i, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let f = csvFields(line)
            var row: [String: String] = [:]
            for (k, c) in cols.enumerated() where k < f.count { row[c] = f[k] }
            rows.append((i + 1, row))
        }
        return rows
    }

    static func readCSVManifest(_ spec: CorpusSpec, index: Int, into out: inout Outcome) {
        let folder = (spec.path as NSString).deletingLastPathComponent
        let rows: [(line: Int, fields: [String: String])]
        do { rows = try readCSV(spec.path, required: ["path", "label", "speaker"]) } catch {
            out.skipped.append(SkippedFile(path: spec.path, reason: "\(error)"))
            return
        }
        for (line, row) in rows {
            let p = row["path"] ?? "", label = row["label"] ?? "", speaker = row["speaker"] ?? ""
            guard !p.isEmpty else {
                out.skipped.append(SkippedFile(path: "\(spec.path):\(line)", reason: "row \(line) has an empty path"))
                continue
            }
            let abs = p.hasPrefix("/") ? p : folder + "/" + p
            guard FileManager.default.fileExists(atPath: abs) else {
                out.skipped.append(SkippedFile(path: abs, reason: "\(spec.path) row \(line): no such file '\(p)'"))
                continue
            }
            guard !speaker.isEmpty else {
                out.skipped.append(SkippedFile(path: abs, reason: "\(spec.path) row \(line): empty speaker"))
                continue
            }
            out.entries.append(CorpusEntry(corpus: index, kind: .csv, path: URL(fileURLWithPath: abs).standardizedFileURL.path,
                                           relativePath: p, rawLabel: label, emotion: Emotion.canonicalName(label),
                                           speaker: "csv:\(speaker)", cues: []))
        }
    }

    static func readSynth(_ spec: CorpusSpec, index: Int, into out: inout Outcome) {
        let manifest = spec.path + "/manifest.csv"
        guard FileManager.default.fileExists(atPath: manifest) else {
            out.skipped.append(SkippedFile(path: manifest, reason: "no manifest.csv: \(spec.path) is not a folder written by `ser synth`"))
            return
        }
        var cues: [String: [CueRegion]] = [:]
        if let rows = try? readCSV(spec.path + "/cues.csv", required: ["path", "t0", "t1", "f0", "f1"]) {
            for (_, r) in rows {
                guard let p = r["path"], let t0 = Double(r["t0"] ?? ""), let t1 = Double(r["t1"] ?? ""),
                      let f0 = Double(r["f0"] ?? ""), let f1 = Double(r["f1"] ?? "") else { continue }
                cues[p, default: []].append(CueRegion(t0: t0, t1: t1, f0: f0, f1: f1))
            }
        }
        var inner = Outcome()
        readCSVManifest(CorpusSpec(kind: .csv, path: manifest), index: index, into: &inner)
        for var e in inner.entries {
            e.kind = .synth
            e.speaker = "synth:" + e.speaker.dropFirst("csv:".count)
            e.cues = cues[e.relativePath] ?? []
            out.entries.append(e)
        }
        out.skipped += inner.skipped
    }
}
