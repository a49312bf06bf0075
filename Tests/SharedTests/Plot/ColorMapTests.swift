import Shared
import XCTest

/// The colour maps against the values matplotlib publishes (lib/matplotlib/_cm_listed.py) and the
/// hex codes of ColorBrewer's RdBu scheme.
final class ColorMapTests: XCTestCase {
    private func assertEntry(_ map: ColorMap, _ i: Int, _ rgb: (Float, Float, Float), file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(map.table[3 * i], rgb.0, accuracy: 1e-6, "\(map.name)[\(i)].r", file: file, line: line)
        XCTAssertEqual(map.table[3 * i + 1], rgb.1, accuracy: 1e-6, "\(map.name)[\(i)].g", file: file, line: line)
        XCTAssertEqual(map.table[3 * i + 2], rgb.2, accuracy: 1e-6, "\(map.name)[\(i)].b", file: file, line: line)
    }

    func testPublishedEntries() {
        // Copied by hand from matplotlib's _cm_listed.py (entries 0, 64, 128, 200, 255).
        assertEntry(.viridis, 0, (0.267004, 0.004874, 0.329415))
        assertEntry(.viridis, 64, (0.229739, 0.322361, 0.545706))
        assertEntry(.viridis, 128, (0.127568, 0.566949, 0.550556))
        assertEntry(.viridis, 200, (0.440137, 0.811138, 0.340967))
        assertEntry(.viridis, 255, (0.993248, 0.906157, 0.143936))
        assertEntry(.magma, 0, (0.001462, 0.000466, 0.013866))
        assertEntry(.magma, 64, (0.316654, 0.071690, 0.485380))
        assertEntry(.magma, 128, (0.716387, 0.214982, 0.475290))
        assertEntry(.magma, 255, (0.987053, 0.991438, 0.749504))
        assertEntry(.inferno, 64, (0.341500, 0.062325, 0.429425))
        assertEntry(.inferno, 200, (0.985952, 0.615750, 0.025592))
        assertEntry(.inferno, 255, (0.988362, 0.998364, 0.644924))
        assertEntry(.cividis, 0, (0.000000, 0.135112, 0.304751))
        assertEntry(.cividis, 128, (0.488697, 0.485318, 0.471008))
        assertEntry(.cividis, 255, (0.995737, 0.909344, 0.217772))
    }

    func testEightBitEndsMatchTheWellKnownHexCodes() {
        XCTAssertEqual(ColorMap.viridis.color(0).hex, "#440154")
        XCTAssertEqual(ColorMap.viridis.color(1).hex, "#fde725")
        XCTAssertEqual(ColorMap.magma.color(1).hex, "#fcfdbf")
        XCTAssertEqual(ColorMap.inferno.color(1).hex, "#fcffa4")
        XCTAssertEqual(ColorMap.grey.color(0).hex, "#000000")
        XCTAssertEqual(ColorMap.grey.color(1).hex, "#ffffff")
    }

    func testSequentialMapsGetBrighterAllTheWay() {
        // What makes them readable in greyscale: luminance rises monotonically with the value.
        for map in [ColorMap.viridis, .magma, .inferno, .cividis, .grey] {
            var last = -1.0
            for i in stride(from: 0, to: 256, by: 4) {
                let y = map.colors[i].luminance
                XCTAssertGreaterThan(y, last, "\(map.name) at \(i)")
                last = y
            }
        }
    }

    func testDivergingMapIsColorBrewerRdBuReversed() {
        let m = ColorMap.blueWhiteRed
        XCTAssertTrue(m.isDiverging)
        XCTAssertEqual(m.colors[0].hex, "#053061")
        XCTAssertEqual(m.colors[255].hex, "#67001f")
        // Entry 51 sits exactly on the third ColorBrewer point (51/255 · 10 = 2).
        XCTAssertEqual(m.colors[51].hex, "#4393c3")
        XCTAssertEqual(m.colors[204].hex, "#d6604d")
        // The middle is ColorBrewer's near-white, #f7f7f7, within one 8-bit step.
        let mid = m.color(0.5)
        for (c, want) in [(mid.r, 0xf7), (mid.g, 0xf7), (mid.b, 0xf7)] { XCTAssertLessThanOrEqual(abs(Int(c) - want), 2, "\(mid)") }
        // Inside a segment the table interpolates linearly: the entry for 0.05 lies between the first
        // two points, #053061 and #2166ac, at fraction x.
        let i = ColorMap.index(0.05)
        let x = Double(i) / 255 * 10
        let want = RGBA(red: (0x05 + (0x21 - 0x05) * x) / 255, green: (0x30 + (0x66 - 0x30) * x) / 255, blue: (0x61 + (0xac - 0x61) * x) / 255)
        XCTAssertEqual(m.colors[i], want)
    }

    func testIndexingFollowsMatplotlib() {
        XCTAssertEqual(ColorMap.index(0), 0)
        XCTAssertEqual(ColorMap.index(-3), 0)
        XCTAssertEqual(ColorMap.index(.nan), 0)
        XCTAssertEqual(ColorMap.index(0.5), 128)
        XCTAssertEqual(ColorMap.index(255.0 / 256), 255)
        XCTAssertEqual(ColorMap.index(1), 255)
        XCTAssertEqual(ColorMap.index(7), 255)
        XCTAssertEqual(ColorMap.named("Magma")?.name, "magma")
        XCTAssertNil(ColorMap.named("jet"))
    }
}
