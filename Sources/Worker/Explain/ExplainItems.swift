import Foundation
import Shared

/// The files `ser explain` is asked about: store files by id or name, a split of the store, or
/// audio files listed in a CSV manifest.
public enum ExplainItems {
    /// Every file of the store, as items (stems from relative paths; prefixed by the corpus number
    /// when the store mixes corpora, whose relative paths may repeat).
    public static func all(_ store: FeatureStore) -> [ExplainItem] {
        let multi = Set(store.files.map(\.corpus)).count > 1
        let names = store.files.map { multi ? "c\($0.corpus)/\($0.relativePath)" : $0.relativePath }
        let stems = ExplainItem.uniqueStems(names)
        return store.files.enumerated().map { i, f in
            ExplainItem(fileID: f.id, path: f.path, relativePath: f.relativePath, stem: stems[i], label: f.label, cues: f.cues)
        }
    }

    /// Files of a split: "test", "train" (of the run's split kind) or "all".
    public static func split(_ store: FeatureStore, which: String, kind: SplitKind) throws -> [ExplainItem] {
        let items = all(store)
        switch which {
        case "all": return items
        case "test", "train":
            let s = store.split(kind)
            let ids = Set(which == "test" ? s.test : s.train)
            return items.filter { ids.contains($0.fileID!) }
        default:
            throw ExplainError("--split \(which): expected test, train or all")
        }
    }

    /// Store files named by id ("12") or relative path ("s01/angry/3.wav"), in the order given.
    public static func named(_ store: FeatureStore, _ names: [String]) throws -> [ExplainItem] {
        let items = all(store)
        var byPath: [String: Int] = [:]
        for (i, f) in store.files.enumerated() { byPath[f.relativePath] = i }
        var out: [ExplainItem] = [], seen = Set<Int>(), unknown: [String] = []
        for name in names {
            let id: Int?
            if let n = Int(name) {
                id = n >= 0 && n < items.count ? n : nil
            } else {
                id = byPath[name] ?? byPath[name.hasPrefix("./") ? String(name.dropFirst(2)) : name]
            }
            guard let id else { unknown.append(name); continue }
            if seen.insert(id).inserted { out.append(items[id]) }
        }
        if !unknown.isEmpty {
            throw ExplainError("--files: \(unknown.map { "'\($0)'" }.joined(separator: ", ")) \(unknown.count == 1 ? "is" : "are") not in the store \(store.directory) (give file ids 0..<\(store.files.count) or relative paths as `ser store info \(store.directory)` lists them)")
        }
        return out
    }

    /// Audio files from a CSV with the header path,label,speaker (the `--corpus csv:` format; the
    /// label may be empty). Rows naming a missing file become items that fail with the reason.
    public static func manifest(_ csv: String) throws -> [ExplainItem] {
        guard FileManager.default.fileExists(atPath: csv) else { throw ExplainError("--manifest \(csv): no such file") }
        let path = URL(fileURLWithPath: csv).standardizedFileURL.path
        let scan = CorpusScanner.scan(CorpusSpec(kind: .csv, path: path), index: 0)
        // An unreadable CSV (no header, wrong columns) is one "skipped" entry naming the CSV itself.
        if scan.entries.isEmpty, let problem = scan.skipped.first, problem.path == path {
            throw ExplainError("--manifest \(problem.reason)")
        }
        let paths = scan.entries.map(\.relativePath) + scan.skipped.map(\.path)
        let stems = ExplainItem.uniqueStems(paths)
        var out: [ExplainItem] = []
        for (i, e) in scan.entries.enumerated() {
            out.append(ExplainItem(fileID: nil, path: e.path, relativePath: e.relativePath, stem: stems[i],
                                   label: e.emotion ?? (e.rawLabel.isEmpty ? nil : e.rawLabel), cues: e.cues))
        }
        for (k, s) in scan.skipped.enumerated() {
            out.append(ExplainItem(fileID: nil, path: s.path, relativePath: s.path, stem: stems[scan.entries.count + k],
                                   label: nil, cues: [], problem: s.reason))
        }
        return out
    }
}
