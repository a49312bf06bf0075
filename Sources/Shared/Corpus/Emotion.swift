/// The canonical emotion names every corpus is mapped to, and the class set a run uses.
public enum Emotion {
    public static let canonical = ["angry", "happy", "neutral", "sad", "fear", "disgust", "surprise", "boredom", "calm"]

    /// The paper's four classes, in label-index order.
    public static let paperFour = ["angry", "happy", "neutral", "sad"]

    /// Spellings found in corpora and CSV manifests, mapped to canonical names.
    static let synonyms: [String: String] = [
        "anger": "angry", "ang": "angry", "mad": "angry",
        "happiness": "happy", "hap": "happy", "joy": "happy", "happy": "happy",
        "neu": "neutral", "neutral": "neutral",
        "sadness": "sad", "sad": "sad",
        "fear": "fear", "fearful": "fear", "fea": "fear", "afraid": "fear",
        "disgust": "disgust", "dis": "disgust", "disgusted": "disgust",
        "surprise": "surprise", "surprised": "surprise", "ps": "surprise", "pleasant_surprise": "surprise",
        "pleasant_surprised": "surprise", "sur": "surprise",
        "boredom": "boredom", "bored": "boredom",
        "calm": "calm", "angry": "angry",
    ]

    /// The canonical name for a label as written in a corpus (case-insensitive), or nil if unknown.
    public static func canonicalName(_ label: String) -> String? {
        let key = label.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: " ", with: "_")
        return synonyms[key]
    }
}

/// The classes of a run: canonical names in label-index order (`--labels`).
public struct LabelSet: Codable, Hashable, Sendable {
    public let names: [String]

    public init(_ names: [String]) throws {
        var seen = Set<String>()
        var out: [String] = []
        for raw in names {
            guard let c = Emotion.canonicalName(raw) else {
                throw FileError("--labels: unknown emotion '\(raw)'; known: \(Emotion.canonical.joined(separator: ", "))")
            }
            guard seen.insert(c).inserted else { throw FileError("--labels: '\(raw)' is listed twice") }
            out.append(c)
        }
        guard out.count >= 2 else { throw FileError("--labels: at least two classes are needed (got \(out.count))") }
        self.names = out
    }

    public static let paper = try! LabelSet(Emotion.paperFour)

    public func index(of canonical: String) -> Int? { names.firstIndex(of: canonical) }
}

import Foundation
