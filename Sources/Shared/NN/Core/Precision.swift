import CKernels
import Foundation

/// The arithmetic of the engine's matrix products.
///
/// `fp32` is OpenBLAS's sgemm. `bf16` rounds both operands of every large product to bfloat16
/// (8-bit mantissa, float32's range) and accumulates in float32 on AMX tiles (`gemm_bf16.c`):
/// the convolutions, Winograd's transformed products and the dense layers; everything else
/// (transforms, batch norm, pooling, the optimiser, the master weights) stays float32, as with
/// the bf16 autocast of TensorFlow and PyTorch on CPU. Small products (K < 32, or fewer than 16
/// rows or columns) stay float32: tiles would be mostly padding.
public enum MatmulPrecision: String, Codable, Sendable, CaseIterable {
    case fp32
    case bf16

    /// Read by `Float.gemm` on every call; written once at start-up, before compute threads run.
    nonisolated(unsafe) static var bf16Active = false

    public static var current: MatmulPrecision { bf16Active ? .bf16 : .fp32 }

    /// True when this CPU and kernel run AMX-BF16 tiles (asks Linux for the tile state once).
    public static var bf16Available: Bool { ser_bf16_amx_available() == 1 }

    /// Selects the precision of this process's matrix products.
    public static func select(_ p: MatmulPrecision) throws {
        if p == .bf16 && !bf16Available {
            throw PrecisionError("--precision bf16 needs AMX-BF16 matrix tiles (Intel Xeon Sapphire Rapids or later, Linux 5.16 or later); "
                                 + "this CPU (\(CPUInfo.modelName)) or kernel has none: use --precision fp32, the default")
        }
        bf16Active = p == .bf16
    }

    /// Whether a product of this shape goes to the bf16 kernel.
    @inline(__always)
    static func useBF16(m: Int, n: Int, k: Int) -> Bool { bf16Active && k >= 32 && m >= 16 && n >= 16 }
}

public struct PrecisionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
