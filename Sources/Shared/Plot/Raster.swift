import CPNG
import Foundation

/// An RGBA image in memory with the drawing the explanation images need: filled rectangles, lines,
/// alpha blending, text in the built-in bitmap font, and PNG files through libpng.
///
/// Pixels are 8-bit RGBA with straight alpha, row-major, the top row first; (0, 0) is the top-left
/// corner. Drawing outside the image is clipped silently, so callers may draw partly visible shapes.
public struct Raster: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: RGBA = .white) {
        precondition(width > 0 && height > 0, "an image of \(width)×\(height) pixels")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 4)
        pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<(width * height) {
                p[4 * i] = fill.r; p[4 * i + 1] = fill.g; p[4 * i + 2] = fill.b; p[4 * i + 3] = fill.a
            }
        }
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 4, "RGBA pixels for \(width)×\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public func contains(x: Int, y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height }

    public subscript(x: Int, y: Int) -> RGBA {
        get {
            precondition(contains(x: x, y: y), "pixel (\(x), \(y)) outside \(width)×\(height)")
            let i = 4 * (y * width + x)
            return RGBA(pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3])
        }
        set {
            precondition(contains(x: x, y: y), "pixel (\(x), \(y)) outside \(width)×\(height)")
            let i = 4 * (y * width + x)
            pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b; pixels[i + 3] = newValue.a
        }
    }

    // MARK: - Drawing

    /// Composites `c` over the pixel at (x, y) ("source over"); outside the image it does nothing.
    public mutating func blend(x: Int, y: Int, _ c: RGBA) {
        guard contains(x: x, y: y), c.a > 0 else { return }
        let i = 4 * (y * width + x)
        pixels.withUnsafeMutableBufferPointer { Raster.blend($0.baseAddress! + i, c) }
    }

    /// Source-over with straight alpha, rounded to the nearest 8-bit value.
    @inline(__always)
    static func blend(_ p: UnsafeMutablePointer<UInt8>, _ c: RGBA) {
        let sa = Int(c.a)
        if sa == 255 {
            p[0] = c.r; p[1] = c.g; p[2] = c.b; p[3] = 255
            return
        }
        let da = Int(p[3])
        if da == 255 {
            let inv = 255 - sa
            p[0] = UInt8((Int(c.r) * sa + Int(p[0]) * inv + 127) / 255)
            p[1] = UInt8((Int(c.g) * sa + Int(p[1]) * inv + 127) / 255)
            p[2] = UInt8((Int(c.b) * sa + Int(p[2]) * inv + 127) / 255)
            return
        }
        // Both partly transparent: weights sa and da·(1 − sa), renormalised by the result's alpha.
        let dw = da * (255 - sa)              // scaled by 255
        let outA255 = sa * 255 + dw           // alpha × 255²
        guard outA255 > 0 else { return }
        func mix(_ s: UInt8, _ d: UInt8) -> UInt8 {
            UInt8((Int(s) * sa * 255 + Int(d) * dw + outA255 / 2) / outA255)
        }
        p[0] = mix(c.r, p[0]); p[1] = mix(c.g, p[1]); p[2] = mix(c.b, p[2])
        p[3] = UInt8((outA255 + 127) / 255)
    }

    /// Fills a rectangle (blended; clipped to the image).
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ c: RGBA) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1, c.a > 0 else { return }
        let stride = width
        pixels.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            for yy in y0..<y1 {
                for xx in x0..<x1 { Raster.blend(base + 4 * (yy * stride + xx), c) }
            }
        }
    }

    /// The outline of a rectangle, `thickness` pixels inside its bounds.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, _ c: RGBA, thickness t: Int = 1) {
        fill(x: x, y: y, width: w, height: t, c)
        fill(x: x, y: y + h - t, width: w, height: t, c)
        fill(x: x, y: y + t, width: t, height: h - 2 * t, c)
        fill(x: x + w - t, y: y + t, width: t, height: h - 2 * t, c)
    }

    /// A straight line between two pixel centres (Bresenham), `thickness` pixels wide.
    public mutating func line(x0: Int, y0: Int, x1: Int, y1: Int, _ c: RGBA, thickness: Int = 1) {
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy, x = x0, y = y0
        let lo = -(thickness - 1) / 2
        while true {
            if thickness <= 1 { blend(x: x, y: y, c) } else { fill(x: x + lo, y: y + lo, width: thickness, height: thickness, c) }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Copies `image` onto this one with its top-left corner at (x, y), blending by its alpha.
    public mutating func draw(_ image: Raster, x: Int, y: Int) {
        for yy in 0..<image.height {
            for xx in 0..<image.width { blend(x: x + xx, y: y + yy, image[xx, yy]) }
        }
    }

    // MARK: - Text

    public enum HorizontalAlignment: Sendable { case left, center, right }
    public enum VerticalAlignment: Sendable { case top, middle, bottom }

    /// Draws one line of text in the 5×7 bitmap font, each font pixel a `scale`×`scale` block.
    /// (x, y) is the anchor given by the alignments. `rotated` text reads upwards (for a vertical
    /// axis title): its "left" is the bottom end and its "top" faces left.
    public mutating func text(_ s: String, x: Int, y: Int, scale: Int = 1, _ c: RGBA = .axis,
                              align: HorizontalAlignment = .left, vAlign: VerticalAlignment = .top,
                              rotated: Bool = false) {
        let w = BitmapFont.width(s, scale: scale), h = BitmapFont.glyphHeight * scale
        let du: Int = align == .left ? 0 : align == .center ? -w / 2 : -w
        let dv: Int = vAlign == .top ? 0 : vAlign == .middle ? -h / 2 : -h
        for (k, ch) in s.enumerated() {
            let rows = BitmapFont.rows(ch)
            for gy in 0..<BitmapFont.glyphHeight {
                let bits = rows[gy]
                guard bits != 0 else { continue }
                for gx in 0..<BitmapFont.glyphWidth where bits & (0x10 >> UInt8(gx)) != 0 {
                    let u = du + (k * BitmapFont.advance + gx) * scale, v = dv + gy * scale
                    if rotated {
                        fill(x: x + v, y: y - u - scale + 1, width: scale, height: scale, c)
                    } else {
                        fill(x: x + u, y: y + v, width: scale, height: scale, c)
                    }
                }
            }
        }
    }

    // MARK: - PNG

    private static let formatRGB = UInt32(PNG_FORMAT_FLAG_COLOR)
    private static let formatRGBA = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)

    /// The image encoded as PNG (RGB when every pixel is opaque, else RGBA).
    public func pngData() throws -> Data {
        let opaque = stride(from: 3, to: pixels.count, by: 4).allSatisfy { pixels[$0] == 255 }
        let source: [UInt8]
        if opaque {
            var rgb = [UInt8](repeating: 0, count: width * height * 3)
            for i in 0..<(width * height) {
                rgb[3 * i] = pixels[4 * i]; rgb[3 * i + 1] = pixels[4 * i + 1]; rgb[3 * i + 2] = pixels[4 * i + 2]
            }
            source = rgb
        } else {
            source = pixels
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = opaque ? Raster.formatRGB : Raster.formatRGBA
        var size: png_alloc_size_t = 0
        // The simplified API reports errors through its return value (no setjmp in Swift).
        let sized = source.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard sized != 0, size > 0 else { throw FileError("PNG encoding failed: \(Raster.message(&image))") }
        var out = Data(count: Int(size))
        let ok = out.withUnsafeMutableBytes { dst in
            source.withUnsafeBytes { png_image_write_to_memory(&image, dst.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard ok != 0 else { throw FileError("PNG encoding failed: \(Raster.message(&image))") }
        out.count = Int(size)
        return out
    }

    /// Writes the image as a PNG file, atomically (a reader never sees half an image).
    public func writePNG(to path: String) throws {
        try AtomicFile.write(pngData(), to: path)
    }

    /// Reads a PNG file of any colour type and bit depth, converted to 8-bit RGBA.
    public static func readPNG(_ path: String) throws -> Raster {
        let data = try readFile(path)
        do {
            return try readPNG(data: data)
        } catch let e as FileError {
            throw FileError("\(path): \(e.description)")
        }
    }

    public static func readPNG(data: Data) throws -> Raster {
        // libpng keeps a pointer into `data` from begin to finish: both happen in one access.
        try data.withUnsafeBytes { raw -> Raster in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                throw FileError("not a PNG image libpng can read (\(message(&image)))")
            }
            image.format = formatRGBA
            let w = Int(image.width), h = Int(image.height)
            guard w > 0, h > 0, w * h <= 1 << 28 else {
                png_image_free(&image)
                throw FileError("PNG of \(w)×\(h) pixels is empty or too large")
            }
            var pixels = [UInt8](repeating: 0, count: w * h * 4)
            let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard finished != 0 else {
                let m = message(&image)
                png_image_free(&image)
                throw FileError("damaged PNG data (\(m))")
            }
            return Raster(width: w, height: h, pixels: pixels)
        }
    }

    private static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
