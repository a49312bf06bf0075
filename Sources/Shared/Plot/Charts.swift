import Foundation

/// One curve of a line chart. Points with a NaN or infinite coordinate break the curve there.
public struct LineSeries: Sendable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    public var color: String?
    public var dashed: Bool

    public init(name: String, x: [Double], y: [Double], color: String? = nil, dashed: Bool = false) {
        precondition(x.count == y.count, "series \(name): \(x.count) x values for \(y.count) y values")
        self.name = name
        self.x = x
        self.y = y
        self.color = color
        self.dashed = dashed
    }

    /// y against 1, 2, 3 … (epochs).
    public init(name: String, y: [Double], color: String? = nil, dashed: Bool = false) {
        self.init(name: name, x: (0..<y.count).map { Double($0 + 1) }, y: y, color: color, dashed: dashed)
    }
}

/// One set of bars in a grouped bar chart: a value per category (NaN: no bar, shown as "n/a").
public struct BarSeries: Sendable {
    public var name: String
    public var values: [Double]
    public var color: String?

    public init(name: String, values: [Double], color: String? = nil) {
        self.name = name
        self.values = values
        self.color = color
    }
}

/// A point of a scatter plot; `group` indexes the plot's group names (and colours).
public struct ScatterPoint: Sendable {
    public var x: Double, y: Double
    public var group: Int
    public var label: String?

    public init(x: Double, y: Double, group: Int, label: String? = nil) {
        self.x = x; self.y = y; self.group = group; self.label = label
    }
}

/// The report's charts as SVG documents: training curves, per-class scores, confusion matrices and
/// frequency profiles, embeddings. Every element a reader may want to inspect carries a class
/// ("series", "bar", "cell", "point") and a tooltip with its value.
public enum Chart {
    /// matplotlib's "tab10" categorical colours: distinct, and safe for most colour vision.
    public static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    public static func color(_ i: Int) -> String { palette[((i % palette.count) + palette.count) % palette.count] }

    static let fontSize = 12.0
    static let titleSize = 14.0
    static let ink = "#222222"
    static let gridInk = "#e3e3e3"

    /// Approximate width of text in a sans-serif font (layout only: nothing depends on exactness).
    static func textWidth(_ s: String, size: Double = fontSize) -> Double { Double(s.count) * size * 0.6 }

    static func finite(_ values: [Double]) -> [Double] { values.filter { $0.isFinite } }

    /// The plot area and its value-to-pixel maps.
    struct Frame {
        let x: Double, y: Double, w: Double, h: Double
        let xLo: Double, xHi: Double, yLo: Double, yHi: Double
        func px(_ v: Double) -> Double { x + (xHi > xLo ? (v - xLo) / (xHi - xLo) : 0.5) * w }
        func py(_ v: Double) -> Double { y + h - (yHi > yLo ? (v - yLo) / (yHi - yLo) : 0.5) * h }
    }

    static func margins(title: String, xLabel: String, yLabel: String, yTickLabels: [String], legend: [String],
                        bottomExtra: Double = 0) -> (left: Double, right: Double, top: Double, bottom: Double) {
        let tickWidth = yTickLabels.map { textWidth($0) }.max() ?? 0
        let left = 14 + (yLabel.isEmpty ? 0 : fontSize + 8) + tickWidth + 8
        let right = legend.isEmpty ? 20 : 36 + (legend.map { textWidth($0) }.max() ?? 0)
        let top = title.isEmpty ? 16 : 16 + titleSize + 10
        let bottom = 8 + fontSize + 8 + (xLabel.isEmpty ? 0 : fontSize + 10) + bottomExtra
        return (left, right, top, bottom)
    }

    static func drawTitleAndLabels(_ svg: inout SVG, _ f: Frame, title: String, xLabel: String, yLabel: String,
                                   xLabelY: Double) {
        if !title.isEmpty {
            svg.text(title, x: f.x + f.w / 2, y: 16 + titleSize, size: titleSize, anchor: .middle, bold: true, cls: "title")
        }
        if !xLabel.isEmpty { svg.text(xLabel, x: f.x + f.w / 2, y: xLabelY, anchor: .middle, cls: "axis-label") }
        if !yLabel.isEmpty {
            svg.text(yLabel, x: 14 + fontSize / 2, y: f.y + f.h / 2, anchor: .middle, rotate: -90, middle: true, cls: "axis-label")
        }
    }

    static func drawYAxis(_ svg: inout SVG, _ f: Frame, _ ticks: Ticks, grid: Bool = true) {
        for v in ticks.axisValues {
            let y = f.py(v)
            if grid { svg.line(x1: f.x, y1: y, x2: f.x + f.w, y2: y, stroke: gridInk, cls: "grid") }
            svg.line(x1: f.x - 5, y1: y, x2: f.x, y2: y, stroke: ink, cls: "tick")
            svg.text(ticks.format(v), x: f.x - 8, y: y, anchor: .end, middle: true, cls: "tick-label")
        }
        svg.line(x1: f.x, y1: f.y, x2: f.x, y2: f.y + f.h, stroke: ink, cls: "axis")
    }

    static func drawXAxis(_ svg: inout SVG, _ f: Frame, _ ticks: Ticks) {
        for v in ticks.axisValues {
            let x = f.px(v)
            svg.line(x1: x, y1: f.y + f.h, x2: x, y2: f.y + f.h + 5, stroke: ink, cls: "tick")
            svg.text(ticks.format(v), x: x, y: f.y + f.h + 8 + fontSize, anchor: .middle, cls: "tick-label")
        }
        svg.line(x1: f.x, y1: f.y + f.h, x2: f.x + f.w, y2: f.y + f.h, stroke: ink, cls: "axis")
    }

    static func drawLegend(_ svg: inout SVG, _ f: Frame, _ entries: [(name: String, color: String, kind: String, dashed: Bool)]) {
        let x = f.x + f.w + 14
        for (i, e) in entries.enumerated() {
            let y = f.y + 8 + Double(i) * (fontSize + 8)
            svg.beginGroup(cls: "legend-entry")
            switch e.kind {
            case "line":
                svg.line(x1: x, y1: y, x2: x + 16, y2: y, stroke: e.color, width: 2.5, dash: e.dashed ? "5 3" : nil)
            case "point":
                svg.circle(cx: x + 8, cy: y, r: 4, fill: e.color)
            default:
                svg.rect(x: x + 2, y: y - 6, width: 12, height: 12, fill: e.color)
            }
            svg.text(e.name, x: x + 22, y: y, middle: true)
            svg.endGroup()
        }
    }

    /// A value for tooltips: up to 4 significant digits.
    static func show(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "n/a" : String(v) }
        return String(format: "%.4g", v)
    }

    // MARK: - Line chart

    /// Several curves over a shared x axis (loss or accuracy per epoch, for training and validation).
    public static func line(_ series: [LineSeries], title: String = "", xLabel: String = "", yLabel: String = "",
                            width: Double = 640, height: Double = 360,
                            xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil) -> String {
        let xs = finite(series.flatMap { $0.x }), ys = finite(series.flatMap { $0.y })
        // About one y tick per 50 pixels and one x tick per 80 (room for a label).
        let yTarget = max(2, Int((height - 90) / 50))
        let yTicks = Ticks.nice(yRange?.lowerBound ?? ys.min() ?? 0, yRange?.upperBound ?? ys.max() ?? 1, target: yTarget)
        let m = margins(title: title, xLabel: xLabel, yLabel: yLabel, yTickLabels: yTicks.axisValues.map(yTicks.format),
                        legend: series.map { $0.name })
        let plotW = max(10, width - m.left - m.right)
        let xTicks = Ticks.nice(xRange?.lowerBound ?? xs.min() ?? 0, xRange?.upperBound ?? xs.max() ?? 1, target: max(2, Int(plotW / 80)))
        var svg = SVG(width: width, height: height)
        let f = Frame(x: m.left, y: m.top, w: plotW, h: max(10, height - m.top - m.bottom),
                      xLo: xRange?.lowerBound ?? xTicks.axisLo, xHi: xRange?.upperBound ?? xTicks.axisHi,
                      yLo: yRange?.lowerBound ?? yTicks.axisLo, yHi: yRange?.upperBound ?? yTicks.axisHi)
        drawYAxis(&svg, f, yTicks)
        drawXAxis(&svg, f, xTicks)
        drawTitleAndLabels(&svg, f, title: title, xLabel: xLabel, yLabel: yLabel, xLabelY: f.y + f.h + 8 + fontSize + 10 + fontSize)
        for (i, s) in series.enumerated() {
            let color = s.color ?? Chart.color(i)
            // One path per series; a non-finite point ends a segment and the next one starts anew.
            var d = "", penDown = false, lonePoints: [(Double, Double)] = [], segmentLength = 0, last = (0.0, 0.0)
            for (x, y) in zip(s.x, s.y) {
                guard x.isFinite, y.isFinite else {
                    if segmentLength == 1 { lonePoints.append(last) }
                    penDown = false
                    segmentLength = 0
                    continue
                }
                let p = (f.px(x), f.py(y))
                d += (penDown ? "L" : "M") + SVG.num(p.0) + " " + SVG.num(p.1)
                penDown = true
                segmentLength += 1
                last = p
            }
            if segmentLength == 1 { lonePoints.append(last) }
            svg.path(d.isEmpty ? "M0 0" : d, stroke: d.isEmpty ? "none" : color, width: 2, dash: s.dashed ? "6 4" : nil,
                     cls: "series", title: s.name)
            // A point with no neighbour would be invisible as a path: mark it.
            for p in lonePoints { svg.circle(cx: p.0, cy: p.1, r: 2.5, fill: color, cls: "marker") }
        }
        drawLegend(&svg, f, series.enumerated().map { ($1.name, $1.color ?? Chart.color($0), "line", $1.dashed) })
        return svg.render()
    }

    // MARK: - Grouped bar chart

    /// Bars per category, one per series side by side (precision, recall and F1 per emotion; or
    /// explanation methods compared per metric).
    public static func groupedBars(categories: [String], series: [BarSeries], title: String = "", yLabel: String = "",
                                   width: Double = 640, height: Double = 360, yRange: ClosedRange<Double>? = nil,
                                   valueLabels: Bool = false) -> String {
        for s in series {
            precondition(s.values.count == categories.count, "bar series \(s.name): \(s.values.count) values for \(categories.count) categories")
        }
        let vs = finite(series.flatMap { $0.values })
        // Bars grow from zero, so zero is always on the axis.
        let yTicks = Ticks.nice(yRange?.lowerBound ?? min(0, vs.min() ?? 0), yRange?.upperBound ?? max(0, vs.max() ?? 1), target: 6)
        let longest = categories.map { textWidth($0) }.max() ?? 0
        var m = margins(title: title, xLabel: "", yLabel: yLabel, yTickLabels: yTicks.axisValues.map(yTicks.format),
                        legend: series.count > 1 ? series.map { $0.name } : [])
        let plotW = max(10, width - m.left - m.right)
        let groupW = plotW / Double(max(1, categories.count))
        let rotateLabels = longest > groupW - 4
        if rotateLabels { m.bottom += longest * 0.72 }
        var svg = SVG(width: width, height: height)
        let f = Frame(x: m.left, y: m.top, w: plotW, h: max(10, height - m.top - m.bottom), xLo: 0, xHi: 1,
                      yLo: yRange?.lowerBound ?? yTicks.axisLo, yHi: yRange?.upperBound ?? yTicks.axisHi)
        drawYAxis(&svg, f, yTicks)
        drawTitleAndLabels(&svg, f, title: title, xLabel: "", yLabel: yLabel, xLabelY: 0)
        let zero = f.py(min(max(0, f.yLo), f.yHi))
        let barW = groupW * 0.8 / Double(max(1, series.count))
        for (c, category) in categories.enumerated() {
            let gx = f.x + Double(c) * groupW + groupW * 0.1
            for (k, s) in series.enumerated() {
                let v = s.values[c]
                let x = gx + Double(k) * barW
                guard v.isFinite else {
                    svg.text("n/a", x: x + barW / 2, y: zero - 4, size: 9, anchor: .middle, fill: "#888888", cls: "missing")
                    continue
                }
                let y = f.py(min(max(v, f.yLo), f.yHi))
                svg.rect(x: x, y: min(y, zero), width: max(1, barW - 1), height: abs(zero - y), fill: s.color ?? Chart.color(k),
                         cls: "bar", title: "\(category) · \(s.name): \(show(v))")
                if valueLabels {
                    svg.text(show(v), x: x + barW / 2, y: v >= 0 ? y - 3 : y + 11, size: 9, anchor: .middle, cls: "value-label")
                }
            }
            let lx = f.x + (Double(c) + 0.5) * groupW, ly = f.y + f.h + 8 + fontSize
            if rotateLabels {
                svg.text(category, x: lx, y: f.y + f.h + 10, anchor: .end, rotate: -40, middle: true, cls: "category")
            } else {
                svg.text(category, x: lx, y: ly, anchor: .middle, cls: "category")
            }
        }
        svg.line(x1: f.x, y1: zero, x2: f.x + f.w, y2: zero, stroke: ink, cls: "axis")
        if series.count > 1 {
            drawLegend(&svg, f, series.enumerated().map { ($1.name, $1.color ?? Chart.color($0), "bar", false) })
        }
        return svg.render()
    }

    // MARK: - Heatmap

    /// A matrix as coloured cells: `values[row][column]` (a confusion matrix with true classes as rows;
    /// per-class frequency profiles with classes × mel bands). NaN cells are grey and labelled "–".
    ///
    /// - Parameters:
    ///   - cellLabels: write each value in its cell (default: when the cells are big enough).
    ///   - format: printf format of cell labels ("%.0f" for counts, "%.2f" for rates).
    public static func heatmap(_ values: [[Double]], rowLabels: [String], columnLabels: [String], title: String = "",
                               xLabel: String = "", yLabel: String = "", colorMap: ColorMap = .viridis,
                               range: ClosedRange<Double>? = nil, cellLabels: Bool? = nil, format: String = "%.2f",
                               width: Double = 640) -> String {
        let rows = values.count, cols = values.first?.count ?? 0
        precondition(values.allSatisfy { $0.count == cols }, "heatmap rows of different lengths")
        precondition(rowLabels.count == rows && columnLabels.count == cols,
                     "heatmap of \(rows)×\(cols) with \(rowLabels.count) row and \(columnLabels.count) column labels")
        let vs = finite(values.flatMap { $0 })
        var lo = range?.lowerBound ?? vs.min() ?? 0, hi = range?.upperBound ?? vs.max() ?? 1
        if colorMap.isDiverging && range == nil {
            let m = max(abs(lo), abs(hi))
            (lo, hi) = m > 0 ? (-m, m) : (-1, 1)
        }
        let barTicks = Ticks.nice(lo, hi, target: 5)
        let rowLabelW = rowLabels.map { textWidth($0) }.max() ?? 0
        let barLabelW = barTicks.values.map { textWidth(barTicks.format($0)) }.max() ?? 0
        let left = 14 + (yLabel.isEmpty ? 0 : fontSize + 8) + rowLabelW + 8
        let right = 20 + 14 + 6 + barLabelW + 14
        let top = title.isEmpty ? 16.0 : 16 + titleSize + 10
        let cellW = max(2, (width - left - right) / Double(max(1, cols)))
        let cellH = min(40, max(cellW, 14))
        let colLabelW = columnLabels.map { textWidth($0) }.max() ?? 0
        // Column labels: upright if they fit, else rotated; thinned when even that would overlap.
        let rotateCols = colLabelW > cellW - 2
        let colStride = rotateCols ? max(1, Int((fontSize + 2) / cellW + 0.999)) : 1
        let colLabelH = rotateCols ? colLabelW * 0.72 + 10 : fontSize + 8
        let plotH = cellH * Double(rows)
        let height = top + plotH + colLabelH + (xLabel.isEmpty ? 8 : fontSize + 16)
        var svg = SVG(width: width, height: height)
        let f = Frame(x: left, y: top, w: cellW * Double(cols), h: plotH, xLo: 0, xHi: 1, yLo: 0, yHi: 1)
        let showLabels = cellLabels ?? (cellW >= textWidth(String(format: format, hi), size: 10) + 4 && cellH >= 14)
        svg.verticalGradient(id: "heatmap-scale", map: colorMap)
        for r in 0..<rows {
            for c in 0..<cols {
                let v = values[r][c]
                let x = f.x + Double(c) * cellW, y = f.y + Double(r) * cellH
                let color = v.isFinite ? colorMap.color(v, lo: lo, hi: hi) : RGBA(204, 204, 204)
                svg.rect(x: x, y: y, width: cellW, height: cellH, fill: color.hex, cls: "cell",
                         title: "\(rowLabels[r]) · \(columnLabels[c]): \(show(v))")
                if showLabels {
                    let text = v.isFinite ? String(format: format, v) : "–"
                    svg.text(text, x: x + cellW / 2, y: y + cellH / 2, size: 10, anchor: .middle,
                             fill: color.luminance > 0.35 ? "#000000" : "#ffffff", middle: true, cls: "cell-label")
                }
            }
        }
        for r in 0..<rows {
            svg.text(rowLabels[r], x: f.x - 6, y: f.y + (Double(r) + 0.5) * cellH, anchor: .end, middle: true, cls: "row-label")
        }
        for c in stride(from: 0, to: cols, by: colStride) {
            let x = f.x + (Double(c) + 0.5) * cellW
            if rotateCols {
                svg.text(columnLabels[c], x: x, y: f.y + f.h + 8, anchor: .end, rotate: -60, middle: true, cls: "column-label")
            } else {
                svg.text(columnLabels[c], x: x, y: f.y + f.h + 6 + fontSize, anchor: .middle, cls: "column-label")
            }
        }
        // Colour bar.
        let bx = f.x + f.w + 20
        svg.rect(x: bx, y: f.y, width: 14, height: f.h, fill: "url(#heatmap-scale)", stroke: ink, strokeWidth: 0.5, cls: "colorbar")
        for v in barTicks.values where v >= lo && v <= hi {
            let y = f.y + f.h - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * f.h
            svg.line(x1: bx + 14, y1: y, x2: bx + 18, y2: y, stroke: ink, cls: "tick")
            svg.text(barTicks.format(v), x: bx + 20, y: y, size: 10, middle: true, cls: "tick-label")
        }
        drawTitleAndLabels(&svg, f, title: title, xLabel: xLabel, yLabel: yLabel, xLabelY: f.y + f.h + colLabelH + fontSize + 4)
        return svg.render()
    }

    // MARK: - Scatter plot

    /// Points coloured by group with a legend (2-D embeddings of utterances by emotion).
    public static func scatter(_ points: [ScatterPoint], groups: [String], title: String = "", xLabel: String = "",
                               yLabel: String = "", width: Double = 640, height: Double = 480, radius: Double = 3.5) -> String {
        let ok = points.filter { $0.x.isFinite && $0.y.isFinite }
        let yTicks = Ticks.nice(ok.map(\.y).min() ?? 0, ok.map(\.y).max() ?? 1, target: max(2, Int((height - 90) / 50)))
        let m = margins(title: title, xLabel: xLabel, yLabel: yLabel, yTickLabels: yTicks.axisValues.map(yTicks.format), legend: groups)
        let plotW = max(10, width - m.left - m.right)
        let xTicks = Ticks.nice(ok.map(\.x).min() ?? 0, ok.map(\.x).max() ?? 1, target: max(2, Int(plotW / 80)))
        var svg = SVG(width: width, height: height)
        let f = Frame(x: m.left, y: m.top, w: plotW, h: max(10, height - m.top - m.bottom),
                      xLo: xTicks.axisLo, xHi: xTicks.axisHi, yLo: yTicks.axisLo, yHi: yTicks.axisHi)
        drawYAxis(&svg, f, yTicks)
        drawXAxis(&svg, f, xTicks)
        drawTitleAndLabels(&svg, f, title: title, xLabel: xLabel, yLabel: yLabel, xLabelY: f.y + f.h + 8 + fontSize + 10 + fontSize)
        for p in ok {
            let name = groups.indices.contains(p.group) ? groups[p.group] : "group \(p.group)"
            svg.circle(cx: f.px(p.x), cy: f.py(p.y), r: radius, fill: Chart.color(p.group), stroke: "#ffffff", opacity: 0.85,
                       cls: "point", title: (p.label.map { $0 + " · " } ?? "") + name)
        }
        drawLegend(&svg, f, groups.enumerated().map { ($1, Chart.color($0), "point", false) })
        return svg.render()
    }
}
