import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Shared
import XCTest

/// Collects the elements of an SVG document with an XML parser: the charts must be well-formed XML
/// (a browser shows nothing otherwise) and contain what they claim.
final class SVGElements: NSObject, XMLParserDelegate {
    struct Element { let name: String; let attributes: [String: String]; var text = "" }
    var elements: [Element] = []
    private var open: [Int] = []
    var error: Error?

    static func parse(_ svg: String) -> SVGElements {
        let collector = SVGElements()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = collector
        if !parser.parse() { collector.error = parser.parserError ?? NSError(domain: "xml", code: 1) }
        return collector
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String]) {
        elements.append(Element(name: name, attributes: attributes))
        open.append(elements.count - 1)
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
    }

    /// Every open element collects the text inside it (a <rect>'s tooltip is in its <title>).
    func parser(_ parser: XMLParser, foundCharacters string: String) {
        for i in open { elements[i].text += string }
    }

    func all(_ name: String, cls: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (cls == nil || $0.attributes["class"] == cls) }
    }

    var texts: [String] { all("text").map { $0.text } }
}

final class SVGTests: XCTestCase {
    func parsed(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> SVGElements {
        let doc = SVGElements.parse(svg)
        XCTAssertNil(doc.error, "not well-formed XML: \(String(describing: doc.error))\n\(svg.prefix(2000))", file: file, line: line)
        let root = doc.elements.first
        XCTAssertEqual(root?.name, "svg", file: file, line: line)
        XCTAssertNotNil(root?.attributes["viewBox"], file: file, line: line)
        XCTAssertEqual(root?.attributes["xmlns"], "http://www.w3.org/2000/svg", file: file, line: line)
        // Self-contained: no links to fonts, images or scripts elsewhere.
        XCTAssertFalse(svg.contains("href"), file: file, line: line)
        XCTAssertFalse(svg.contains("<script"), file: file, line: line)
        XCTAssertFalse(svg.contains("NaN"), file: file, line: line)
        return doc
    }

    func testLineChartHasOnePathPerSeriesAndALegend() {
        let svg = Chart.line([
            LineSeries(name: "train loss", y: [2.1, 1.5, 1.1, 0.8, 0.7]),
            LineSeries(name: "validation loss", y: [2.2, 1.7, 1.4, .nan, 1.3], dashed: true),
            LineSeries(name: "lr × 1000", x: [1, 2, 3], y: [1, 0.5, 0.25]),
        ], title: "Training <fold 1> & friends", xLabel: "epoch", yLabel: "loss")
        let doc = parsed(svg)
        let paths = doc.all("path", cls: "series")
        XCTAssertEqual(paths.count, 3)
        // The NaN splits the validation curve into two segments of one path: two M commands.
        XCTAssertEqual(paths[1].attributes["d"]?.filter { $0 == "M" }.count, 2)
        XCTAssertEqual(paths[0].attributes["d"]?.filter { $0 == "L" }.count, 4)
        // The lone point after the NaN (epoch 5) is a marker, not an invisible path.
        XCTAssertEqual(doc.all("circle", cls: "marker").count, 1)
        XCTAssertEqual(doc.all("g", cls: "legend-entry").count, 3)
        for label in ["train loss", "validation loss", "lr × 1000", "Training <fold 1> & friends", "epoch", "loss"] {
            XCTAssertTrue(doc.texts.contains(label), "missing text \(label) in \(doc.texts)")
        }
        // x ticks are the epochs.
        for t in ["1", "2", "3", "4", "5"] { XCTAssertTrue(doc.all("text", cls: "tick-label").map(\.text).contains(t)) }
    }

    func testLineChartMapsValuesToTheRightPixels() {
        let svg = Chart.line([LineSeries(name: "a", x: [0, 10], y: [0, 100])], width: 600, height: 400)
        let doc = parsed(svg)
        let d = doc.all("path", cls: "series")[0].attributes["d"] ?? ""
        let numbers = d.split(whereSeparator: { "ML ".contains($0) }).compactMap { Double($0) }
        XCTAssertEqual(numbers.count, 4)
        // (0, 0) is the plot's bottom-left corner and (10, 100) its top-right: read them off the axes.
        let axes = doc.all("line", cls: "axis")
        let yAxis = axes.first { $0.attributes["x1"] == $0.attributes["x2"] }!
        let xAxis = axes.first { $0.attributes["y1"] == $0.attributes["y2"] }!
        XCTAssertEqual(numbers[0], Double(yAxis.attributes["x1"]!)!, accuracy: 0.01)
        XCTAssertEqual(numbers[1], Double(xAxis.attributes["y1"]!)!, accuracy: 0.01)
        XCTAssertEqual(numbers[2], Double(xAxis.attributes["x2"]!)!, accuracy: 0.01)
        XCTAssertEqual(numbers[3], Double(yAxis.attributes["y1"]!)!, accuracy: 0.01)
    }

    func testGroupedBarsOnePerFiniteValue() {
        let classes = ["neutral", "calm", "happy", "sad"]
        let svg = Chart.groupedBars(categories: classes, series: [
            BarSeries(name: "precision", values: [0.9, 0.8, 0.7, 0.6]),
            BarSeries(name: "recall", values: [0.85, .nan, 0.75, 0.5]),
            BarSeries(name: "F1", values: [0.87, 0.7, 0.72, -0.1]),
        ], title: "Per-class scores", yLabel: "score", valueLabels: true)
        let doc = parsed(svg)
        let bars = doc.all("rect", cls: "bar")
        XCTAssertEqual(bars.count, 11)
        XCTAssertEqual(doc.all("text", cls: "missing").count, 1)
        for c in classes { XCTAssertTrue(doc.texts.contains(c), c) }
        // Bars go category by category, series by series (the NaN is skipped): 0.9 is bar 0, 0.6 bar 8.
        let h = bars.map { Double($0.attributes["height"]!)! }
        XCTAssertEqual(h[0] / h[8], 0.9 / 0.6, accuracy: 0.02)
        // The negative bar hangs below the zero line: its top is where the positive bars end.
        let zeroLine = bars[0].attributes["y"].map { Double($0)! + h[0] }!
        XCTAssertEqual(Double(bars[10].attributes["y"]!)!, zeroLine, accuracy: 0.02)
        XCTAssertTrue(bars[0].text.contains("neutral · precision: 0.9"), bars[0].text)
    }

    func testHeatmapHasOneRectPerCellWithLabels() {
        let names = ["angry", "happy", "sad"]
        let confusion: [[Double]] = [[12, 2, 1], [3, 9, 0], [0, .nan, 14]]
        let svg = Chart.heatmap(confusion, rowLabels: names, columnLabels: names, title: "Confusion",
                                xLabel: "predicted", yLabel: "true", colorMap: .viridis, format: "%.0f")
        let doc = parsed(svg)
        let cells = doc.all("rect", cls: "cell")
        XCTAssertEqual(cells.count, 9)
        let labels = doc.all("text", cls: "cell-label").map(\.text)
        XCTAssertEqual(labels, ["12", "2", "1", "3", "9", "0", "0", "–", "14"])
        // Colours follow the values: the largest is the map's top, the smallest its bottom.
        XCTAssertEqual(cells[8].attributes["fill"], ColorMap.viridis.color(1).hex)
        XCTAssertEqual(cells[5].attributes["fill"], ColorMap.viridis.color(0).hex)
        XCTAssertEqual(cells[7].attributes["fill"], "#cccccc")
        // Light cells get dark text and dark cells light text.
        XCTAssertEqual(doc.all("text", cls: "cell-label")[8].attributes["fill"], "#000000")
        XCTAssertEqual(doc.all("text", cls: "cell-label")[5].attributes["fill"], "#ffffff")
        XCTAssertEqual(doc.all("linearGradient").count, 1)
        XCTAssertEqual(doc.all("text", cls: "row-label").map(\.text), names)
    }

    func testWideHeatmapOfMelProfilesStillHasEveryCell() {
        let rows = 8, cols = 64
        let values = (0..<rows).map { r in (0..<cols).map { c in sin(Double(r * cols + c)) } }
        let svg = Chart.heatmap(values, rowLabels: (0..<rows).map { "class \($0)" },
                                columnLabels: (0..<cols).map { "\($0 * 125) Hz" }, colorMap: .blueWhiteRed)
        let doc = parsed(svg)
        XCTAssertEqual(doc.all("rect", cls: "cell").count, rows * cols)
        XCTAssertTrue(doc.all("text", cls: "cell-label").isEmpty)  // too small for numbers
        let shown = doc.all("text", cls: "column-label").count
        XCTAssertGreaterThan(shown, 4)
        XCTAssertLessThanOrEqual(shown, cols)
    }

    func testScatterPointsAndLegend() {
        var pts: [ScatterPoint] = []
        for g in 0..<4 { for i in 0..<10 { pts.append(ScatterPoint(x: Double(g) + Double(i) * 0.01, y: Double(i), group: g)) } }
        pts.append(ScatterPoint(x: .nan, y: 1, group: 0))
        let svg = Chart.scatter(pts, groups: ["neutral", "happy", "sad", "angry"], title: "t-SNE", xLabel: "d1", yLabel: "d2")
        let doc = parsed(svg)
        let points = doc.all("circle", cls: "point")
        XCTAssertEqual(points.count, 40)
        XCTAssertEqual(Set(points.map { $0.attributes["fill"]! }).count, 4)
        XCTAssertEqual(doc.all("g", cls: "legend-entry").count, 4)
        XCTAssertTrue(doc.texts.contains("angry"))
    }

    func testAllNaNAndEmptyInputsStillGiveValidDocuments() {
        _ = parsed(Chart.line([LineSeries(name: "nothing", y: [.nan, .nan])]))
        _ = parsed(Chart.line([]))
        _ = parsed(Chart.groupedBars(categories: ["a"], series: [BarSeries(name: "x", values: [.nan])]))
        _ = parsed(Chart.heatmap([[.nan]], rowLabels: ["r"], columnLabels: ["c"]))
        _ = parsed(Chart.scatter([], groups: []))
    }

    func testEscapingAndControlCharacters() {
        XCTAssertEqual(SVG.escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;")
        XCTAssertEqual(SVG.escape("bell\u{7}tab\t"), "belltab\t")
        let doc = parsed(Chart.line([LineSeries(name: "x\u{1}<y>", y: [1, 2])], title: "]]> & <!-- -->"))
        XCTAssertTrue(doc.texts.contains("x<y>"))
        XCTAssertTrue(doc.texts.contains("]]> & <!-- -->"))
    }

    func testNiceTicks() {
        func check(_ lo: Double, _ hi: Double, _ target: Int, step: Double, values: [Double], axis: ClosedRange<Double>,
                   file: StaticString = #filePath, line: UInt = #line) {
            let t = Ticks.nice(lo, hi, target: target)
            XCTAssertEqual(t.step, step, accuracy: step * 1e-12, file: file, line: line)
            XCTAssertEqual(t.values, values, file: file, line: line)
            XCTAssertEqual(t.axisLo, axis.lowerBound, file: file, line: line)
            XCTAssertEqual(t.axisHi, axis.upperBound, file: file, line: line)
        }
        check(0, 1, 5, step: 0.2, values: [0, 0.2, 0.4, 0.6, 0.8, 1], axis: 0...1)
        check(0, 10, 5, step: 2, values: [0, 2, 4, 6, 8, 10], axis: 0...10)
        check(0.13, 0.87, 4, step: 0.2, values: [0.2, 0.4, 0.6, 0.8], axis: 0...1)
        check(-3.7, 12.2, 6, step: 5, values: [0, 5, 10], axis: -5...15)
        check(0, 10.24, 8, step: 2, values: [0, 2, 4, 6, 8, 10], axis: 0...12)
        check(1200, 8000, 5, step: 2000, values: [2000, 4000, 6000, 8000], axis: 0...8000)
        check(0.0012, 0.0031, 4, step: 0.0005, values: [0.0015, 0.002, 0.0025, 0.003], axis: 0.001...0.0035)
        check(1, 50, 10, step: 5, values: [5, 10, 15, 20, 25, 30, 35, 40, 45, 50], axis: 0...50)
        // Degenerate and bad ranges still give a usable axis.
        check(5, 5, 5, step: 0.2, values: [4.6, 4.8, 5, 5.2, 5.4], axis: 4.4...5.6)
        check(0, 0, 5, step: 0.5, values: [-1, -0.5, 0, 0.5, 1], axis: -1...1)
        check(.nan, .nan, 5, step: 0.5, values: [-1, -0.5, 0, 0.5, 1], axis: -1...1)
        check(10, 0, 5, step: 2, values: [0, 2, 4, 6, 8, 10], axis: 0...10)
        check(-.infinity, 3, 3, step: 0.2, values: [2.8, 3, 3.2], axis: 2.6...3.4)

        let t = Ticks.nice(0, 1, target: 5)
        XCTAssertEqual(t.values.map(t.format), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let big = Ticks.nice(0, 3e6, target: 3)
        XCTAssertEqual(big.values.map(big.format), ["0", "1e6", "2e6", "3e6"])
        let tiny = Ticks.nice(0, 3e-5, target: 3)
        XCTAssertEqual(tiny.values.map(tiny.format), ["0", "1e-5", "2e-5", "3e-5"])
        let negative = Ticks.nice(-1, 1, target: 4)
        XCTAssertEqual(negative.values.map(negative.format), ["-1.0", "-0.5", "0", "0.5", "1.0"])
    }
}
