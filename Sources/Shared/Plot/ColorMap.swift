import Foundation

/// An 8-bit colour with straight (not premultiplied) alpha.
public struct RGBA: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var r: UInt8, g: UInt8, b: UInt8, a: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8 = 255) {
        self.r = r; self.g = g; self.b = b; self.a = a
    }

    /// From components in 0...1 (clamped, rounded to the nearest 8-bit step).
    public init(red: Double, green: Double, blue: Double, alpha: Double = 1) {
        func byte(_ v: Double) -> UInt8 { v.isNaN ? 0 : UInt8((min(max(v, 0), 1) * 255).rounded()) }
        self.init(byte(red), byte(green), byte(blue), byte(alpha))
    }

    /// "#rrggbb" (alpha is not part of it).
    public var hex: String { String(format: "#%02x%02x%02x", r, g, b) }
    public var description: String { a == 255 ? hex : hex + String(format: "/%d", a) }

    /// Relative luminance (sRGB, WCAG): chooses black or white text on a coloured cell.
    public var luminance: Double {
        func lin(_ c: UInt8) -> Double {
            let v = Double(c) / 255
            return v <= 0.03928 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    public static let white = RGBA(255, 255, 255)
    public static let black = RGBA(0, 0, 0)
    public static let clear = RGBA(0, 0, 0, 0)
    public static let axis = RGBA(34, 34, 34)
    public static let grid = RGBA(221, 221, 221)
}

/// A colour map: 256 colours for values scaled to 0...1.
///
/// The sequential maps are perceptually uniform (equal steps in value look like equal steps in
/// colour, and they stay readable in greyscale and for colour-blind readers): use them for
/// magnitudes such as log-mel energy and non-negative attributions (Grad-CAM). `blueWhiteRed` is
/// diverging, for signed attributions (LIME weights, occlusion differences): negative blue, zero
/// near-white, positive red.
public struct ColorMap: Sendable, Equatable {
    public let name: String
    /// 256 entries: r, g, b in 0...1.
    public let table: [Float]
    /// True for maps whose middle means zero: their value range should be symmetric around zero.
    public let isDiverging: Bool
    /// The table as 8-bit colours (alpha 255).
    public let colors: [RGBA]

    public init(name: String, table: [Float], isDiverging: Bool = false) {
        precondition(table.count == 256 * 3, "a colour map has 256 r, g, b entries")
        self.name = name
        self.table = table
        self.isDiverging = isDiverging
        colors = (0..<256).map { i in
            RGBA(red: Double(table[3 * i]), green: Double(table[3 * i + 1]), blue: Double(table[3 * i + 2]))
        }
    }

    /// The colour for `t` in 0...1 (clamped; NaN gives the first entry — callers mask NaN).
    @inlinable
    public func color(_ t: Double) -> RGBA {
        colors[Self.index(t)]
    }

    @inlinable
    public static func index(_ t: Double) -> Int {
        guard t > 0 else { return 0 }
        // matplotlib's convention: 0...1 onto 256 bins, 1.0 in the last one.
        return min(255, Int(t * 256))
    }

    /// The colour of `value` between `lo` and `hi`.
    public func color(_ value: Double, lo: Double, hi: Double) -> RGBA {
        color(hi > lo ? (value - lo) / (hi - lo) : 0.5)
    }

    public static let viridis = ColorMap(name: "viridis", table: viridisData)
    public static let magma = ColorMap(name: "magma", table: magmaData)
    public static let inferno = ColorMap(name: "inferno", table: infernoData)
    public static let cividis = ColorMap(name: "cividis", table: cividisData)
    /// Black to white.
    public static let grey = ColorMap(name: "grey", table: (0..<256).flatMap { i in
        [Float](repeating: Float(i) / 255, count: 3)
    })

    /// ColorBrewer's 11-class RdBu scheme reversed (matplotlib's "RdBu_r"): #053061 (dark blue) at 0,
    /// #f7f7f7 (near-white) at 0.5, #67001f (dark red) at 1, linearly interpolated in sRGB between
    /// the 11 published colours at even spacing, as matplotlib builds its 256-entry table.
    /// ColorBrewer: Cynthia Brewer, Mark Harrower and The Pennsylvania State University (Apache-2.0).
    public static let blueWhiteRed: ColorMap = {
        let brewer: [UInt32] = [0x053061, 0x2166ac, 0x4393c3, 0x92c5de, 0xd1e5f0, 0xf7f7f7,
                                0xfddbc7, 0xf4a582, 0xd6604d, 0xb2182b, 0x67001f]
        let points = brewer.map { c in [Double((c >> 16) & 255) / 255, Double((c >> 8) & 255) / 255, Double(c & 255) / 255] }
        var table = [Float]()
        table.reserveCapacity(768)
        let segments = Double(points.count - 1)
        for i in 0..<256 {
            let x = Double(i) / 255 * segments
            let k = min(Int(x), points.count - 2)
            let f = x - Double(k)
            for ch in 0..<3 { table.append(Float(points[k][ch] * (1 - f) + points[k + 1][ch] * f)) }
        }
        return ColorMap(name: "blueWhiteRed", table: table, isDiverging: true)
    }()

    /// Every map by name, for command-line options (`--colormap magma`).
    public static let all: [ColorMap] = [.viridis, .magma, .inferno, .cividis, .grey, .blueWhiteRed]

    public static func named(_ name: String) -> ColorMap? {
        all.first { $0.name.lowercased() == name.lowercased() }
    }

    public static func == (a: ColorMap, b: ColorMap) -> Bool { a.name == b.name && a.table == b.table }
}
