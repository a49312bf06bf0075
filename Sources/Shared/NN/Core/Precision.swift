import CKernels
import Foundation

/// The arithmetic of the engine's matrix products.
///
/// `fp32` is OpenBLAS's sgemm. `bf16` rounds both operands of every large product to bfloat16
/// (8-bit mantissa, float32's range) and accumulates in float32 (`gemm_bf16.c`), on AMX tiles
/// where the CPU has them (Intel Sapphire Rapids and later), else with AVX512-BF16 dot products
/// (AMD Zen 4 and Zen 5, Intel Cooper Lake):
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

    /// The hardware that runs bf16 products, best last.
    public enum Kernel: Int32, Sendable, CaseIterable, CustomStringConvertible {
        case none = 0    // SER_BF16_NONE
        case vector = 1  // SER_BF16_VECTOR
        case amx = 2     // SER_BF16_AMX

        public var description: String {
            switch self {
            case .none: return "none"
            case .vector: return "AVX512-BF16 vectors"
            case .amx: return "AMX tiles"
            }
        }
    }

    /// The best bf16 kernel this CPU and OS run (asks Linux for the AMX tile state once).
    public static var supportedKernel: Kernel { Kernel(rawValue: ser_bf16_kernel_supported()) ?? .none }

    /// The kernel bf16 products use now.
    public static var kernel: Kernel { Kernel(rawValue: ser_bf16_kernel()) ?? .none }

    /// True when this CPU runs bf16 products with one of the kernels.
    public static var bf16Available: Bool { supportedKernel != .none }

    /// Uses a slower kernel than the best (to compare the two, or to test the vector kernel on an
    /// AMX machine); false when this CPU cannot run it. Before compute threads run.
    @discardableResult
    public static func useKernel(_ k: Kernel) -> Bool { ser_bf16_use_kernel(k.rawValue) == 1 }

    /// Selects the precision of this process's matrix products.
    public static func select(_ p: MatmulPrecision) throws {
        if p == .bf16 && !bf16Available {
            throw PrecisionError("--precision bf16 needs AVX512-BF16 (AMD Zen 4 or later, Intel Cooper Lake or later) or AMX-BF16 tiles; "
                                 + "this CPU (\(CPUInfo.modelName)) has neither: use --precision fp32, the default")
        }
        // SER_BF16_KERNEL=vector|amx picks the kernel, to compare them on one machine.
        if p == .bf16, let name = ProcessInfo.processInfo.environment["SER_BF16_KERNEL"], !name.isEmpty {
            guard let k = ["vector": Kernel.vector, "amx": .amx][name.lowercased()], useKernel(k) else {
                throw PrecisionError("SER_BF16_KERNEL=\(name): this CPU runs \(supportedKernel) at best; use vector, amx or unset it")
            }
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
