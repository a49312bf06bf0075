/// Vectorisable elementary functions for the hot loops of the front end.
///
/// `Foundation.log` is a scalar libm call (~20 cycles per value); these are branch-free so the
/// compiler turns the loops into AVX-512 code. Accuracy is stated per function and tested against
/// libm over the whole range the front end uses.
public enum FastMath {
    /// ln(x) for positive, normal x with relative error below 2e-7 (absolute below 2e-7 near x = 1).
    ///
    /// x = m · 2^e with m in [√½, √2); ln m = 2 atanh(t), t = (m − 1)/(m + 1), |t| ≤ 0.172, summed to
    /// t⁹ (the next term is below 1e-9).
    @inline(__always)
    public static func ln(_ x: Float) -> Float {
        let bits = x.bitPattern
        var e = Int32(bitPattern: bits >> 23) &- 127
        var m = Float(bitPattern: (bits & 0x007F_FFFF) | 0x3F80_0000)
        let big = m > 1.41421356
        m = big ? m * 0.5 : m
        e = big ? e &+ 1 : e
        let t = (m - 1) / (m + 1)
        let t2 = t * t
        let p = t * (2 + t2 * (0.666666667 + t2 * (0.4 + t2 * (0.285714286 + t2 * 0.222222222))))
        let fe = Float(e)
        // ln 2 split in two so that e·ln2 keeps full precision for large |e|.
        return fe * 0.693145752 + (fe * 1.42860677e-06 + p)
    }

    /// √x for x ≥ 0 (exactly 0 at 0) with relative error below 1e-6: x · x^(−½), the inverse root
    /// from the bit-level estimate with Moroz et al.'s constants (2018; 6.5e-4 after its first,
    /// modified Newton step) and one ordinary Newton step. Multiplications only, so the loops
    /// vectorise (Swift's `squareRoot()` keeps a branch to libm for negative inputs and does not).
    @inline(__always)
    public static func sqrt(_ x: Float) -> Float {
        var y = Float(bitPattern: 0x5F1F_FFF9 &- (x.bitPattern >> 1))
        y = y * (0.703952253 * (2.38924456 - x * y * y))
        y = y * (1.5 - 0.5 * x * y * y)
        return x * y
    }

    /// y[i] = ln(x[i] + offset) for `count` values (x ≥ 0, offset > 0).
    @inline(__always)
    public static func lnOffset(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, offset: Float) {
        for i in 0..<count { y[i] = ln(x[i] + offset) }
    }
}
