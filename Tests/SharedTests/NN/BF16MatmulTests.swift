import Foundation
import Shared
import XCTest

/// The bf16 path's matrix product, with every kernel this CPU runs (AVX512-BF16 vectors, and AMX
/// tiles where it has them), against float64 sums of the bf16-rounded operands: every transpose
/// combination, sizes that are not multiples of the blocks (32×32 tiles, 12-row register blocks,
/// K's 32 and its 256-value cache blocks), leading dimensions wider than the matrices, and
/// alpha/beta. Skipped where the CPU has neither.
final class BF16MatmulTests: XCTestCase {
    override func setUpWithError() throws {
        guard MatmulPrecision.bf16Available else { throw XCTSkip("this CPU has neither AVX512-BF16 nor AMX-BF16") }
    }

    override func tearDown() {
        try? MatmulPrecision.select(.fp32)
        MatmulPrecision.useKernel(MatmulPrecision.supportedKernel)
    }

    var kernels: [MatmulPrecision.Kernel] {
        MatmulPrecision.Kernel.allCases.filter { $0 != .none && $0.rawValue <= MatmulPrecision.supportedKernel.rawValue }
    }

    func testEveryKernelMatchesRoundedOperandsForEveryLayout() throws {
        for kernel in kernels {
            XCTAssertTrue(MatmulPrecision.useKernel(kernel))
            XCTAssertEqual(MatmulPrecision.kernel, kernel)
            try matchesRoundedOperands(kernel)
        }
    }

    func testACPUCannotBeGivenAKernelItLacks() throws {
        if MatmulPrecision.supportedKernel == .vector { XCTAssertFalse(MatmulPrecision.useKernel(.amx)) }
        XCTAssertTrue(MatmulPrecision.useKernel(.vector))
    }

    /// Round to nearest even at bfloat16's 8-bit mantissa.
    func bf16(_ x: Float) -> Double {
        let u = x.bitPattern
        return Double(Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000))
    }

    func matchesRoundedOperands(_ kernel: MatmulPrecision.Kernel) throws {
        try MatmulPrecision.select(.bf16)
        var rng = SeededGenerator(seed: 3)
        for (m, n, k) in [(32, 32, 32), (33, 17, 45), (64, 96, 100), (100, 33, 300), (16, 16, 32), (47, 64, 64), (45, 50, 600)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (0.5, -0.25)] {
                    let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2
                    let a = (0..<(ta ? k : m) * lda).map { _ in Float(rng.normal()) }
                    let b = (0..<(tb ? n : k) * ldb).map { _ in Float(rng.normal()) }
                    var c = (0..<m * ldc).map { _ in Float(rng.normal()) }
                    var ref = c.map(Double.init)
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = 0.0
                            for p in 0..<k { s += bf16(ta ? a[p * lda + i] : a[i * lda + p]) * bf16(tb ? b[j * ldb + p] : b[p * ldb + j]) }
                            ref[i * ldc + j] = Double(alpha) * s + Double(beta) * ref[i * ldc + j]
                        }
                    }
                    Float.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, &c, ldc)
                    var worst = 0.0
                    for i in 0..<m { for j in 0..<n { worst = max(worst, abs(Double(c[i * ldc + j]) - ref[i * ldc + j])) } }
                    // Only the float32 accumulation differs from the reference: ≈ √k ulps of the sums.
                    XCTAssertLessThan(worst, 2e-4 * Double(k).squareRoot(), "\(kernel): \(m)×\(n)×\(k) transA \(ta) transB \(tb) α \(alpha) β \(beta)")
                }
            }
        }
    }

    func testRoundsItsOperandsAndLeavesSmallProductsToSgemm() throws {
        var rng = SeededGenerator(seed: 4)
        let (m, n, k) = (64, 64, 256)
        let a = (0..<m * k).map { _ in Float(rng.normal()) }, b = (0..<k * n).map { _ in Float(rng.normal()) }
        var c32 = [Float](repeating: 0, count: m * n), c16 = c32
        Float.gemm(false, false, m, n, k, 1, a, k, b, n, 0, &c32, n)
        try MatmulPrecision.select(.bf16)
        XCTAssertEqual(MatmulPrecision.current, .bf16)
        Float.gemm(false, false, m, n, k, 1, a, k, b, n, 0, &c16, n)
        // bf16 operands: relative error of the order of 2⁻⁹ per product, not float32's 2⁻²⁴.
        let diff = zip(c32, c16).map { abs($0 - $1) }.max()!, scale = c32.map(abs).max()!
        XCTAssertGreaterThan(diff / scale, 1e-5)
        XCTAssertLessThan(diff / scale, 2e-2)
        // K = 9 (VGGish's first layer as a GEMM) stays float32, bit for bit.
        var s32 = [Float](repeating: 0, count: m * n), s16 = s32
        try MatmulPrecision.select(.fp32)
        Float.gemm(false, false, m, n, 9, 1, a, 9, b, n, 0, &s32, n)
        try MatmulPrecision.select(.bf16)
        Float.gemm(false, false, m, n, 9, 1, a, 9, b, n, 0, &s16, n)
        XCTAssertEqual(s32, s16)
    }
}
