import Foundation
import Shared

/// The explanation methods of `ser explain`.
public enum ExplainMethod: String, Codable, CaseIterable, Sendable {
    case gradcam, lime, occlusion

    public var title: String {
        switch self {
        case .gradcam: return "Grad-CAM"
        case .lime: return "LIME"
        case .occlusion: return "occlusion"
        }
    }

    /// Relative cost, for handing out the longest tasks first (LIME ≈ 1000 forward passes per
    /// patch, occlusion ≈ 80, Grad-CAM one forward and backward; plus the faithfulness curves).
    public var cost: Double {
        switch self {
        case .lime: return 10
        case .occlusion: return 2
        case .gradcam: return 1
        }
    }
}

/// Which class a map explains.
public enum TargetChoice: Codable, Hashable, Sendable, CustomStringConvertible {
    /// The file-level prediction (the mean of its kept segments' probabilities), as the paper.
    case predicted
    /// The file's true label (a file without one fails).
    case label
    /// A class by name.
    case named(String)

    public init(parsing text: String) {
        switch text.lowercased() {
        case "predicted", "prediction": self = .predicted
        case "label", "true": self = .label
        default: self = .named(text)
        }
    }

    public var description: String {
        switch self {
        case .predicted: return "predicted"
        case .label: return "label"
        case .named(let n): return n
        }
    }

    public init(from decoder: Decoder) throws { self.init(parsing: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Everything that decides the explanations of a job (every rank parses the same command line).
public struct ExplainSettings: Codable, Hashable, Sendable {
    public var target = TargetChoice.predicted
    public var gradcam = GradCAM.Settings()
    public var lime = LIME.Settings()
    public var occlusion = Occlusion.Settings()
    public var audible = AudibleGradCAM.Settings()
    public var faithfulness = Faithfulness.Settings()
    /// Compute deletion/insertion curves for every task.
    public var faithfulnessEnabled = true
    public var baseline = Baseline.mean
    /// Write Grad-CAM's WAV files (needs the audio files).
    public var audio = true
    public var seed: UInt64 = 1
    /// Patches per forward pass.
    public var batch = 128

    public init() {}

    /// The settings that decide method `m`'s outputs for a model, as a hash: a finished task is
    /// reused only when it matches (changing --lime-samples recomputes LIME, not Grad-CAM).
    public func fingerprint(for m: ExplainMethod, model: String, frontEnd: FrontEndConfig) -> String {
        var fields: [String] = ["model=\(model)", "frontend=\(frontEnd.hash)", "method=\(m.rawValue)", "target=\(target)",
                                "version=1"]
        if faithfulnessEnabled {
            let f = faithfulness
            fields += ["faithfulness=\(f.cellFrames)x\(f.cellBands)/\(f.steps)/\(f.randomOrders)", "seed=\(seed)", "baseline=\(baseline)"]
        }
        switch m {
        case .gradcam:
            fields += ["layer=\(gradcam.layer.rawValue)"]
            if audio { fields += ["audible=\(audible.smoothingSeconds)/\(audible.threshold)/\(audible.fadeSeconds)"] }
        case .lime:
            fields += ["lime=\(lime.samples)/\(lime.regions)/\(lime.kernelWidth)/\(lime.ridge)", "seed=\(seed)", "baseline=\(baseline)"]
        case .occlusion:
            let o = occlusion
            fields += ["occlusion=\(o.windowFrames)x\(o.windowBands)/\(o.strideFrames)x\(o.strideBands)", "baseline=\(baseline)"]
        }
        return XXHash64.hex(XXHash64.hash(Array(fields.joined(separator: "\n").utf8)))
    }

    /// Method parameters as a person reads them (in each task's JSON summary).
    public func parameters(for m: ExplainMethod) -> [String: String] {
        var p: [String: String] = ["target": target.description, "baseline": baseline.description, "batch": String(batch)]
        switch m {
        case .gradcam:
            p["layer"] = gradcam.layer.rawValue
            p["upsampling"] = "bilinear"
            if audio {
                p["audible smoothing (s)"] = String(audible.smoothingSeconds)
                p["audible threshold"] = String(audible.threshold)
                p["audible fade (s)"] = String(audible.fadeSeconds)
            }
            p.removeValue(forKey: "baseline")
        case .lime:
            p["samples"] = String(lime.samples)
            p["regions"] = lime.regions.description
            p["kernel width"] = String(lime.kernelWidth)
            p["ridge"] = String(lime.ridge)
            p["seed"] = String(seed)
        case .occlusion:
            p["window"] = "\(occlusion.windowFrames)x\(occlusion.windowBands)"
            p["stride"] = "\(occlusion.strideFrames)x\(occlusion.strideBands)"
        }
        if faithfulnessEnabled {
            p["faithfulness cells"] = "\(faithfulness.cellFrames)x\(faithfulness.cellBands)"
            p["faithfulness steps"] = String(faithfulness.steps)
            p["faithfulness random orders"] = String(faithfulness.randomOrders)
        }
        return p
    }
}

/// One file to explain: from the feature store (`fileID`) or an audio file of a manifest.
public struct ExplainItem: Codable, Hashable, Sendable {
    public var fileID: Int?
    /// The audio file (absolute).
    public var path: String
    /// The name the store or the manifest gives it.
    public var relativePath: String
    /// Output file names: OUT/<method>/<stem>.*; unique within a job.
    public var stem: String
    public var label: String?
    public var cues: [CueRegion]
    /// Why this item cannot be explained (a manifest row naming a missing file): its tasks fail with it.
    public var problem: String?

    public init(fileID: Int?, path: String, relativePath: String, stem: String, label: String?, cues: [CueRegion], problem: String? = nil) {
        self.fileID = fileID
        self.path = path
        self.relativePath = relativePath
        self.stem = stem
        self.label = label
        self.cues = cues
        self.problem = problem
    }

    /// A file-name stem from a relative path: the extension dropped, "/" → "__", and anything but
    /// letters, digits, '-', '_' and '.' replaced by '_'.
    public static func stem(_ relativePath: String) -> String {
        let noExt = (relativePath as NSString).deletingPathExtension
        let joined = noExt.split(separator: "/").filter { $0 != "." && $0 != ".." }.joined(separator: "__")
        let safe = String(joined.unicodeScalars.map { s -> Character in
            (CharacterSet.alphanumerics.contains(s) && s.isASCII) || s == "-" || s == "_" || s == "." ? Character(s) : "_"
        })
        return safe.isEmpty ? "file" : safe
    }

    /// Unique stems for a list (a repeated stem gets "-2", "-3", … in list order).
    public static func uniqueStems(_ paths: [String]) -> [String] {
        var used = Set<String>()
        return paths.map { p in
            let s = stem(p)
            var candidate = s, n = 1
            while used.contains(candidate) {
                n += 1
                candidate = "\(s)-\(n)"
            }
            used.insert(candidate)
            return candidate
        }
    }
}
