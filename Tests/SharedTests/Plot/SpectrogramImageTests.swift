import Foundation
import Shared
import TestSupport
import XCTest

/// The spectrogram renderer puts each cell where the axes say it is, overlays on the same cells,
/// and labels its axes.
final class SpectrogramImageTests: XCTestCase {
    let frames = 40, bands = 16

    /// Mel-like band centres: rising, uneven.
    var centres: [Double] { (0..<bands).map { 50 * pow(1.25, Double($0)) + Double($0) * 40 } }

    func image(_ values: [Float]) -> SpectrogramImage {
        SpectrogramImage(logMel: values, frames: frames, bands: bands, secondsPerFrame: 0.01, bandCentersHz: centres)
    }

    func centre(_ L: SpectrogramImage.Layout, frame: Int, band: Int) -> (x: Int, y: Int) {
        let c = L.cell(frame: frame, band: band)
        return (c.x + c.width / 2, c.y + c.height / 2)
    }

    func testBrightCellLandsAtItsTimeAndLowBandsAreAtTheBottom() {
        var m = [Float](repeating: -80, count: frames * bands)
        m[30 * bands + 2] = 0          // frame 30, band 2: late, low
        m[5 * bands + 13] = -40        // frame 5, band 13: early, high, half as bright
        let spec = image(m)
        let L = spec.layout
        let r = spec.render(title: "test")
        let bright = centre(L, frame: 30, band: 2), half = centre(L, frame: 5, band: 13)
        XCTAssertEqual(r[bright.x, bright.y], .white)
        XCTAssertEqual(r[half.x, half.y], ColorMap.grey.color(0.5))
        XCTAssertEqual(r[centre(L, frame: 30, band: 3).x, centre(L, frame: 30, band: 3).y], .black)
        XCTAssertEqual(r[centre(L, frame: 29, band: 2).x, centre(L, frame: 29, band: 2).y], .black)
        // Independent of the layout helper: x grows with time, y with falling frequency.
        XCTAssertGreaterThan(bright.x, half.x)
        XCTAssertGreaterThan(bright.y, half.y)
        XCTAssertEqual(bright.x, L.plotX + 30 * L.cellWidth + L.cellWidth / 2)
        XCTAssertEqual(bright.y, L.plotY + L.plotHeight - 3 * L.cellHeight + L.cellHeight / 2)
        // The whole cell, and only it, is bright.
        let c = L.cell(frame: 30, band: 2)
        var whites = 0
        for y in L.plotY..<(L.plotY + L.plotHeight) {
            for x in L.plotX..<(L.plotX + L.plotWidth) where r[x, y] == .white { whites += 1 }
        }
        XCTAssertEqual(whites, c.width * c.height)
    }

    func testOverlayColoursTheSameCell() {
        let m = [Float](repeating: 0, count: frames * bands)
        var o = [Float](repeating: 0, count: frames * bands)
        o[12 * bands + 9] = 1
        let spec = image(m)
        let L = spec.layout
        let r = spec.render(overlay: o, overlayMap: .magma, alpha: 1, upsampling: .nearest)
        let hot = centre(L, frame: 12, band: 9), cold = centre(L, frame: 12, band: 8)
        XCTAssertEqual(r[hot.x, hot.y], ColorMap.magma.color(1))
        XCTAssertEqual(r[cold.x, cold.y], ColorMap.magma.color(0))
        // At alpha 0.5 over a black spectrogram (all zero → the middle grey of a flat range): a mix.
        let mixed = spec.render(overlay: o, overlayMap: .magma, alpha: 0.5, upsampling: .nearest)
        let base = ColorMap.grey.color(0.5), top = ColorMap.magma.color(1)
        let p = mixed[hot.x, hot.y]
        XCTAssertEqual(Int(p.r), (Int(top.r) * 128 + Int(base.r) * 127 + 127) / 255)
        XCTAssertEqual(Int(p.g), (Int(top.g) * 128 + Int(base.g) * 127 + 127) / 255)
    }

    func testCoarseOverlayIsStretchedOverTheWholePlot() {
        let m = [Float](repeating: 0, count: frames * bands)
        // 2 × 2 map: frame-major, band 0 first. Only (late, high) is hot.
        let o: [Float] = [0, 0, 0, 1]
        let spec = image(m)
        let L = spec.layout
        let nearest = spec.render(overlay: o, overlayFrames: 2, overlayBands: 2, overlayMap: .viridis, alpha: 1, upsampling: .nearest)
        XCTAssertEqual(nearest[centre(L, frame: 35, band: 14).x, centre(L, frame: 35, band: 14).y], ColorMap.viridis.color(1))
        XCTAssertEqual(nearest[centre(L, frame: 21, band: 9).x, centre(L, frame: 21, band: 9).y], ColorMap.viridis.color(1))
        XCTAssertEqual(nearest[centre(L, frame: 18, band: 14).x, centre(L, frame: 18, band: 14).y], ColorMap.viridis.color(0))
        XCTAssertEqual(nearest[centre(L, frame: 35, band: 6).x, centre(L, frame: 35, band: 6).y], ColorMap.viridis.color(0))
        // Bilinear: the plot's centre is the average of the four cells (0.25); corners keep their values.
        let smooth = spec.render(overlay: o, overlayFrames: 2, overlayBands: 2, overlayMap: .grey, alpha: 1, upsampling: .bilinear)
        let mid = smooth[L.plotX + L.plotWidth / 2, L.plotY + L.plotHeight / 2]
        XCTAssertEqual(Double(mid.r) / 255, 0.25, accuracy: 0.02)
        XCTAssertEqual(smooth[L.plotX + L.plotWidth - 1, L.plotY], .white)
        XCTAssertEqual(smooth[L.plotX, L.plotY + L.plotHeight - 1], .black)
    }

    func testDivergingOverlayIsSymmetricAroundZero() {
        let m = [Float](repeating: 0, count: frames * bands)
        var o = [Float](repeating: 0, count: frames * bands)
        o[3 * bands + 3] = -0.5
        o[20 * bands + 3] = 2
        let spec = image(m)
        let L = spec.layout
        let r = spec.render(overlay: o, overlayMap: .blueWhiteRed, alpha: 1, upsampling: .nearest)
        // Range −2…2: zero is the middle colour, −0.5 a quarter below it, 2 the top.
        XCTAssertEqual(r[centre(L, frame: 10, band: 10).x, centre(L, frame: 10, band: 10).y], ColorMap.blueWhiteRed.color(0.5))
        XCTAssertEqual(r[centre(L, frame: 3, band: 3).x, centre(L, frame: 3, band: 3).y], ColorMap.blueWhiteRed.color(0.375))
        XCTAssertEqual(r[centre(L, frame: 20, band: 3).x, centre(L, frame: 20, band: 3).y], ColorMap.blueWhiteRed.color(1))
    }

    func testAxesTitleAndColourBarAreDrawn() {
        var m = [Float](repeating: 0, count: frames * bands)
        for i in m.indices { m[i] = Float(i % 7) }
        let spec = image(m)
        let L = spec.layout
        func ink(_ r: Raster, x: Range<Int>, y: Range<Int>) -> Int {
            var n = 0
            for yy in y { for xx in x where r[xx, yy] != .white { n += 1 } }
            return n
        }
        let plain = spec.render()
        let titled = spec.render(title: "anger · 03-01-05")
        // Left margin: frequency labels and the rotated axis title. Bottom: seconds and "time (s)".
        XCTAssertGreaterThan(ink(plain, x: 0..<(L.plotX - 12), y: L.plotY..<(L.plotY + L.plotHeight)), 200)
        XCTAssertGreaterThan(ink(plain, x: L.plotX..<(L.plotX + L.plotWidth), y: (L.plotY + L.plotHeight + 8)..<plain.height), 200)
        // Title area above the plot: empty without a title, inked with one. (The colour bar's own label
        // is above the bar, right of the plot.)
        XCTAssertEqual(ink(plain, x: 0..<(L.plotX + L.plotWidth), y: 0..<(L.plotY - 2)), 0)
        XCTAssertGreaterThan(ink(titled, x: 0..<(L.plotX + L.plotWidth), y: 0..<(L.plotY - 2)), 100)
        XCTAssertGreaterThan(ink(plain, x: L.colorBarX..<plain.width, y: 0..<(L.plotY - 2)), 20)
        // Colour bar: the map from bottom (value 0) to top.
        let bx = L.colorBarX + L.colorBarWidth / 2
        XCTAssertEqual(plain[bx, L.colorBarY + L.colorBarHeight - 1], ColorMap.grey.color(0))
        XCTAssertEqual(plain[bx, L.colorBarY], ColorMap.grey.color(1))
        // The "0" tick label of the time axis sits under the plot's left edge.
        XCTAssertGreaterThan(ink(plain, x: (L.plotX - 8)..<(L.plotX + 8), y: (L.plotY + L.plotHeight + 4)..<(L.plotY + L.plotHeight + 30)), 10)
    }

    func testNonFiniteCellsStayBlank() {
        var m = [Float](repeating: 1, count: frames * bands)
        m[7 * bands + 7] = .nan
        m[8 * bands + 7] = .infinity
        let spec = image(m)
        let L = spec.layout
        let r = spec.render()
        XCTAssertEqual(r[centre(L, frame: 7, band: 7).x, centre(L, frame: 7, band: 7).y], .white)
        XCTAssertEqual(r[centre(L, frame: 8, band: 7).x, centre(L, frame: 8, band: 7).y], .white)
        // A constant spectrogram gets the middle of the map, not a division by zero.
        XCTAssertEqual(r[centre(L, frame: 9, band: 7).x, centre(L, frame: 9, band: 7).y], ColorMap.grey.color(0.5))
    }

    func testBandCentresFromEdges() {
        XCTAssertEqual(SpectrogramImage.bandCenters(edgesHz: [0, 100, 250, 450, 700], bands: 3), [100, 250, 450])
        XCTAssertEqual(SpectrogramImage.bandCenters(edgesHz: [0, 100, 300], bands: 2), [50, 200])
    }

    func testUtteranceImageIsWrittenAsPNG() throws {
        // A 10 s utterance (1000 frames × 64 bands) with a Grad-CAM-sized overlay, through the file.
        let f = 1000, b = 64
        var m = [Float](repeating: 0, count: f * b)
        for i in 0..<f { for j in 0..<b { m[i * b + j] = Float(sin(Double(i) * 0.05) * cos(Double(j) * 0.2)) } }
        let spec = SpectrogramImage(logMel: m, frames: f, bands: b, secondsPerFrame: 0.01,
                                    bandCentersHz: (0..<b).map { 125 + Double($0) * 100 })
        let cam = (0..<(6 * 4)).map { Float($0) }
        let image = spec.render(overlay: cam, overlayFrames: 6, overlayBands: 4, title: "utterance")
        let path = TestEnv.temporaryDirectory(self, "ser-plot") + "/utterance.png"
        try image.writePNG(to: path)
        let back = try Raster.readPNG(path)
        XCTAssertEqual(back, image)
        XCTAssertEqual(spec.layout.plotWidth, 1000)
    }
}
