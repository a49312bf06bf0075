import Foundation

/// Which network and at what size. Stored in every run directory and checkpoint; its hash is
/// part of the configuration hash that guards resuming and explaining.
public struct ModelConfig: Codable, Hashable, Sendable {
    public enum Architecture: String, Codable, CaseIterable, Sendable {
        /// The paper's late fusion: VGGish taps after pool 2, 3, 4 + YAMNet's last map.
        case fusionV1 = "fusion-v1"
        /// Only the VGGish branch (its three taps) on the same head.
        case vggishOnly = "vggish-only"
        /// Only the YAMNet branch on the same head.
        case yamnetOnly = "yamnet-only"
    }

    public var architecture: Architecture = .fusionV1
    public var classes: Int = 4
    /// Channel multiplier for every layer (1 = the published networks; tests use small widths).
    public var width: Double = 1
    /// Input patch: frames × mel bands.
    public var frames: Int = 96
    public var bands: Int = 64
    public var tapChannels: Int = 512
    public var fuseChannels: Int = 256
    public var denseUnits: Int = 512
    /// YAMNet's batch norm: no scale term, epsilon 1e-4. Moving statistics follow
    /// m ← momentum·m + (1 − momentum)·batch with momentum 0.9 (PyTorch's convention): Keras' 0.99
    /// needs several hundred steps to forget the initial statistics, longer than a small corpus's
    /// whole run, and evaluation would use stale statistics until then.
    public var bnEpsilon: Double = 1e-4
    public var bnMomentum: Double = 0.9
    /// Train YAMNet's branch (false: its weights and batch-norm statistics stay as loaded).
    public var freezeYAMNet: Bool = false

    public init(architecture: Architecture = .fusionV1, classes: Int = 4, width: Double = 1, freezeYAMNet: Bool = false) {
        self.architecture = architecture
        self.classes = classes
        self.width = width
        self.freezeYAMNet = freezeYAMNet
    }

    public var hasVGGish: Bool { architecture != .yamnetOnly }
    public var hasYAMNet: Bool { architecture != .vggishOnly }

    /// A published channel count scaled by `width`.
    public func channels(_ base: Int) -> Int { max(1, Int((Double(base) * width).rounded())) }

    /// Spatial size of the fused map: 4 halvings of the input.
    public var mapHeight: Int { frames / 16 }
    public var mapWidth: Int { bands / 16 }

    public func validate() throws {
        guard frames % 32 == 0, bands % 32 == 0 else {
            throw ModelError("the input patch must be a multiple of 32 in both directions for VGGish's four pools and YAMNet's five strides (got \(frames)×\(bands))")
        }
        guard classes >= 2 else { throw ModelError("a classifier needs at least 2 classes (got \(classes))") }
        guard width > 0, width <= 4 else { throw ModelError("width must be in (0, 4] (got \(width))") }
    }
}

public struct ModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
