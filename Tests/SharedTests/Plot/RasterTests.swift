import Foundation
import Shared
import TestSupport
import XCTest

/// The image buffer: blending worked by hand, the bitmap font against its patterns, and PNG files
/// written by our encoder and decoded by libpng's reader.
final class RasterTests: XCTestCase {
    func testPNGRoundTripKeepsEveryPixelWithAlpha() throws {
        var rng = SeededGenerator(seed: 7)
        var image = Raster(width: 37, height: 23)
        for i in 0..<image.pixels.count { image.pixels[i] = UInt8(rng.below(256)) }
        let dir = TestEnv.temporaryDirectory(self)
        let path = dir + "/nested/alpha.png"
        try image.writePNG(to: path)
        let back = try Raster.readPNG(path)
        XCTAssertEqual(back.width, 37)
        XCTAssertEqual(back.height, 23)
        XCTAssertEqual(back.pixels, image.pixels)
        // Written through a temporary file that is renamed into place: nothing else is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/nested"), ["alpha.png"])
    }

    func testOpaqueImagesAreWrittenAsRGBAndReadBackTheSame() throws {
        var image = Raster(width: 64, height: 48, fill: RGBA(10, 20, 30))
        image.fill(x: 5, y: 6, width: 20, height: 10, RGBA(200, 100, 50))
        let data = try image.pngData()
        // IHDR colour type (byte 25 of the file): 2 = RGB, 6 = RGBA.
        XCTAssertEqual(data[25], 2)
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let back = try Raster.readPNG(data: data)
        XCTAssertEqual(back, image)
        var translucent = image
        translucent[0, 0] = RGBA(1, 2, 3, 4)
        XCTAssertEqual(try translucent.pngData()[25], 6)
    }

    func testReadingSomethingElseNamesTheFile() throws {
        let path = TestEnv.temporaryDirectory(self) + "/not.png"
        try Data("GIF89a, honestly".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Raster.readPNG(path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        XCTAssertThrowsError(try Raster.readPNG(path + ".missing")) { error in
            XCTAssertTrue("\(error)".contains("no such file"), "\(error)")
        }
    }

    func testBlendingByHand() {
        var image = Raster(width: 2, height: 1, fill: .white)
        image.blend(x: 0, y: 0, RGBA(255, 0, 0, 128))
        // 0·128/255 + 255·127/255 = 127.0 (rounded from 127.498).
        XCTAssertEqual(image[0, 0], RGBA(255, 127, 127, 255))
        image.blend(x: 1, y: 0, RGBA(0, 0, 255, 255))
        XCTAssertEqual(image[1, 0], RGBA(0, 0, 255))
        image.blend(x: 1, y: 0, RGBA(9, 9, 9, 0))
        XCTAssertEqual(image[1, 0], RGBA(0, 0, 255))
        // Over a transparent pixel the colour is the source's and the alpha is the source's.
        var clear = Raster(width: 1, height: 1, fill: .clear)
        clear.blend(x: 0, y: 0, RGBA(40, 80, 120, 100))
        XCTAssertEqual(clear[0, 0], RGBA(40, 80, 120, 100))
        // Two half-transparent layers: alpha 1 − (1 − 0.5)(1 − 0.5) = 0.75.
        var two = Raster(width: 1, height: 1, fill: RGBA(0, 0, 0, 128))
        two.blend(x: 0, y: 0, RGBA(255, 255, 255, 128))
        XCTAssertEqual(Int(two[0, 0].a), 192, accuracy: 1)
        XCTAssertEqual(Int(two[0, 0].r), 170, accuracy: 1)  // 255·0.5 / 0.75
    }

    func testDrawingIsClippedAndLinesHitTheirPixels() {
        var image = Raster(width: 10, height: 10, fill: .white)
        image.fill(x: -5, y: 8, width: 100, height: 100, .black)
        XCTAssertEqual(image[0, 9], .black)
        XCTAssertEqual(image[9, 8], .black)
        XCTAssertEqual(image[9, 7], .white)
        var lines = Raster(width: 8, height: 8, fill: .white)
        lines.line(x0: 0, y0: 0, x1: 4, y1: 4, .black)
        lines.line(x0: 7, y0: 0, x1: 7, y1: 7, .black)
        var inked = 0
        for y in 0..<8 { for x in 0..<8 where lines[x, y] == .black { inked += 1 } }
        XCTAssertEqual(inked, 5 + 8)
        for i in 0...4 { XCTAssertEqual(lines[i, i], .black) }
        lines.line(x0: -10, y0: 3, x1: 20, y1: 3, .black)  // partly outside: no crash
        XCTAssertEqual(lines[0, 3], .black)
    }

    func testTextDrawsTheGlyphPatterns() {
        // "4" and "k" as the font defines them, drawn at scale 2 and read back pixel by pixel.
        let four = [
            "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.",
        ]
        let k = [
            "#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#.",
        ]
        var image = Raster(width: 40, height: 20, fill: .white)
        image.text("4k", x: 3, y: 2, scale: 2, .black)
        for (offset, glyph) in [(0, four), (6, k)] {
            for (row, pattern) in glyph.enumerated() {
                for (col, ch) in pattern.enumerated() {
                    for dy in 0..<2 {
                        for dx in 0..<2 {
                            let px = image[3 + (offset + col) * 2 + dx, 2 + row * 2 + dy]
                            XCTAssertEqual(px, ch == "#" ? .black : .white, "glyph \(offset) row \(row) col \(col)")
                        }
                    }
                }
            }
        }
        XCTAssertEqual(BitmapFont.width("4k", scale: 2), 22)
        // Right-aligned at x = 20, the 5 columns of "1" are x 15…19; its bottom row ".###." inks 16…18.
        var right = Raster(width: 30, height: 10, fill: .white)
        right.text("1", x: 20, y: 0, .black, align: .right)
        XCTAssertEqual((14...20).map { right[$0, 6] == .black }, [false, false, true, true, true, false, false])
        // Rotated text reads upwards: the first character is at the bottom.
        var up = Raster(width: 10, height: 20, fill: .white)
        up.text("1", x: 0, y: 19, .black, rotated: true)
        // Rotated, "1"'s bottom row becomes the rightmost column (x = 6), its columns 1…3 y 18…16.
        XCTAssertEqual((13...19).map { up[6, $0] == .black }, [false, false, false, true, true, true, false])
        // and its top row (the single pixel of column 2) the leftmost column, at y 17.
        XCTAssertEqual((15...19).map { up[0, $0] == .black }, [false, false, true, false, false])
    }
}
