import Foundation

/// A log-mel spectrogram drawn as an image, optionally with an attribution map laid over it: the
/// picture an explanation (Grad-CAM, LIME, occlusion) is judged by.
///
/// Time runs left to right, low frequencies are at the bottom. The x axis is labelled in seconds
/// (from the frame period), the y axis in Hz at mel band centres, and a colour bar gives the scale
/// of the overlay (or of the spectrogram when there is none).
///
/// The matrix is frame-major: `logMel[f * bands + b]` is band b of frame f. Non-finite values are
/// left blank (background), so a damaged input shows as a hole rather than as a plausible colour.
public struct SpectrogramImage: Sendable {
    public let logMel: [Float]
    public let frames: Int
    public let bands: Int
    public let secondsPerFrame: Double
    public let bandCentersHz: [Double]

    /// Size of one matrix cell on screen.
    public var pixelsPerFrame: Int
    public var pixelsPerBand: Int
    /// Scale of the bitmap font (1 = 5×7 pixels per character).
    public var textScale = 2
    /// Colour map of the spectrogram itself.
    public var base: ColorMap = .grey
    public var baseLabel = "log-mel"
    public var overlayLabel = "attribution"
    public var background = RGBA.white

    public init(logMel: [Float], frames: Int, bands: Int, secondsPerFrame: Double, bandCentersHz: [Double]) {
        precondition(frames > 0 && bands > 0 && logMel.count == frames * bands,
                     "log-mel matrix of \(logMel.count) values for \(frames) frames × \(bands) bands")
        precondition(bandCentersHz.count == bands, "\(bandCentersHz.count) band centres for \(bands) bands")
        precondition(secondsPerFrame > 0, "frame period \(secondsPerFrame) s")
        self.logMel = logMel
        self.frames = frames
        self.bands = bands
        self.secondsPerFrame = secondsPerFrame
        self.bandCentersHz = bandCentersHz
        // About 800 × 320 pixels of plot whatever the matrix, never less than a pixel per cell.
        pixelsPerFrame = max(1, min(16, 800 / frames))
        pixelsPerBand = max(1, min(16, 320 / bands))
    }

    /// Band centres from the edges of a mel filterbank: `bands + 2` edges for triangular filters
    /// (band b peaks at edge b + 1), or `bands + 1` edges for adjacent rectangular bands (midpoints).
    public static func bandCenters(edgesHz: [Double], bands: Int) -> [Double] {
        if edgesHz.count == bands + 2 { return Array(edgesHz[1...bands]) }
        precondition(edgesHz.count == bands + 1, "\(edgesHz.count) band edges for \(bands) bands: expected \(bands + 1) or \(bands + 2)")
        return (0..<bands).map { (edgesHz[$0] + edgesHz[$0 + 1]) / 2 }
    }

    /// Where everything goes, in pixels of the rendered image.
    public struct Layout: Sendable {
        public let imageWidth: Int, imageHeight: Int
        /// The matrix area (top-left corner and size).
        public let plotX: Int, plotY: Int, plotWidth: Int, plotHeight: Int
        public let cellWidth: Int, cellHeight: Int
        public let colorBarX: Int, colorBarY: Int, colorBarWidth: Int, colorBarHeight: Int

        /// The pixel rectangle of matrix cell (frame, band); band 0 is the bottom row.
        public func cell(frame: Int, band: Int) -> (x: Int, y: Int, width: Int, height: Int) {
            (plotX + frame * cellWidth, plotY + plotHeight - (band + 1) * cellHeight, cellWidth, cellHeight)
        }
    }

    public var layout: Layout { layout(barLabelWidth: BitmapFont.width("-0.000", scale: textScale)) }

    /// The layout with room for colour-bar labels `barLabelWidth` pixels wide (the plot does not move).
    func layout(barLabelWidth labelWidth: Int) -> Layout {
        let glyphH = BitmapFont.glyphHeight * textScale
        let tick = 2 + 2 * textScale
        let yLabelWidth = yTicks().map { BitmapFont.width($0.label, scale: textScale) }.max() ?? 0
        let plotX = 8 + glyphH + 8 + yLabelWidth + tick + 2
        let plotY = 10 + glyphH + 10
        let plotW = frames * pixelsPerFrame, plotH = bands * pixelsPerBand
        let barX = plotX + plotW + 16, barW = max(10, 6 * textScale)
        let title = max(BitmapFont.width(overlayLabel, scale: textScale), BitmapFont.width(baseLabel, scale: textScale))
        let barLabelWidth = max(labelWidth, title - barW - tick - 4)
        return Layout(imageWidth: barX + barW + tick + 4 + barLabelWidth + 8,
                      imageHeight: plotY + plotH + tick + 4 + glyphH + 8 + glyphH + 8,
                      plotX: plotX, plotY: plotY, plotWidth: plotW, plotHeight: plotH,
                      cellWidth: pixelsPerFrame, cellHeight: pixelsPerBand,
                      colorBarX: barX, colorBarY: plotY, colorBarWidth: barW, colorBarHeight: plotH)
    }

    /// How a coarser overlay is stretched onto the matrix.
    public enum Upsampling: Sendable { case nearest, bilinear }

    /// Draws the spectrogram, the overlay if given, the axes, the title and the colour bar.
    ///
    /// - Parameters:
    ///   - overlay: a map over the same time-frequency area, frame-major like `logMel`, of
    ///     `overlayFrames × overlayBands` values (default: the matrix's own shape). A coarser map
    ///     (a Grad-CAM of 6×4 cells over a 96×64 patch) is upsampled to the pixels.
    ///   - overlayMap: its colour map; a diverging map gets a range symmetric around zero.
    ///   - alpha: opacity of the overlay, 0...1.
    ///   - overlayRange: fixes the value range of the overlay's colours (default: its own min…max),
    ///     so several images can share one scale.
    public func render(overlay: [Float]? = nil, overlayFrames: Int? = nil, overlayBands: Int? = nil,
                       overlayMap: ColorMap = .magma, alpha: Double = 0.55, upsampling: Upsampling = .bilinear,
                       overlayRange: ClosedRange<Double>? = nil, title: String = "") -> Raster {
        let baseRange = Self.finiteRange(logMel, symmetric: false)
        var mapRange: (lo: Double, hi: Double)? = nil
        var oF = 0, oB = 0
        if let overlay {
            oF = overlayFrames ?? frames
            oB = overlayBands ?? bands
            precondition(oF > 0 && oB > 0 && overlay.count == oF * oB,
                         "overlay of \(overlay.count) values for \(oF) frames × \(oB) bands")
            mapRange = overlayRange.map { ($0.lowerBound, $0.upperBound) }
                ?? Self.finiteRange(overlay, symmetric: overlayMap.isDiverging)
        }
        let barRange = mapRange ?? baseRange
        let barLabels = colorBarTicks(barRange).map { $0.label }
        let L = layout(barLabelWidth: barLabels.map { BitmapFont.width($0, scale: textScale) }.max() ?? 0)
        var image = Raster(width: L.imageWidth, height: L.imageHeight, fill: background)
        let a = UInt8((min(max(alpha, 0), 1) * 255).rounded())

        // The matrix, pixel by pixel: base colour, then the overlay composited over it.
        let baseColors = base.colors, overlayColors = overlayMap.colors
        let pw = L.plotWidth, ph = L.plotHeight, cw = L.cellWidth, ch = L.cellHeight
        let nb = bands
        let baseScale = baseRange.hi > baseRange.lo ? 1 / (baseRange.hi - baseRange.lo) : 0
        let mapLo = mapRange?.lo ?? 0
        let mapScale = mapRange.map { $0.hi > $0.lo ? 1 / ($0.hi - $0.lo) : 0 } ?? 0
        let imageWidth = image.width
        logMel.withUnsafeBufferPointer { m in
            (overlay ?? []).withUnsafeBufferPointer { o in
                image.pixels.withUnsafeMutableBufferPointer { px in
                    let out = px.baseAddress!
                    for py in 0..<ph {
                        let bandFromBottom = (ph - 1 - py) / ch
                        // Overlay row coordinate: pixel centre in overlay cells, band 0 at the bottom.
                        let v = (Double(ph - py) - 0.5) / Double(ph) * Double(oB) - 0.5
                        for pxX in 0..<pw {
                            let frame = pxX / cw
                            let value = Double(m[frame * nb + bandFromBottom])
                            let p = out + 4 * ((L.plotY + py) * imageWidth + L.plotX + pxX)
                            guard value.isFinite else { continue }
                            let t = baseScale == 0 ? 0.5 : (value - baseRange.lo) * baseScale
                            Raster.blend(p, baseColors[ColorMap.index(t)])
                            guard oF > 0 else { continue }
                            let u = (Double(pxX) + 0.5) / Double(pw) * Double(oF) - 0.5
                            let ov: Double
                            switch upsampling {
                            case .nearest:
                                let fi = min(oF - 1, max(0, Int((u + 0.5).rounded(.down))))
                                let bi = min(oB - 1, max(0, Int((v + 0.5).rounded(.down))))
                                ov = Double(o[fi * oB + bi])
                            case .bilinear:
                                ov = Self.bilinear(o, oF, oB, u, v)
                            }
                            guard ov.isFinite else { continue }
                            let ot = mapScale == 0 ? 0.5 : (ov - mapLo) * mapScale
                            var c = overlayColors[ColorMap.index(ot)]
                            c.a = a
                            Raster.blend(p, c)
                        }
                    }
                }
            }
        }

        drawAxes(&image, L)
        if !title.isEmpty {
            image.text(title, x: L.plotX + L.plotWidth / 2, y: 10, scale: textScale, .axis, align: .center)
        }
        if let mapRange {
            drawColorBar(&image, L, overlayMap, mapRange, label: overlayLabel)
        } else {
            drawColorBar(&image, L, base, baseRange, label: baseLabel)
        }
        return image
    }

    /// Bilinear sample at (u, v) in cell coordinates (cell centres at integers), clamped at the edges.
    @inline(__always)
    static func bilinear(_ o: UnsafeBufferPointer<Float>, _ nf: Int, _ nb: Int, _ u: Double, _ v: Double) -> Double {
        let uc = min(max(u, 0), Double(nf - 1)), vc = min(max(v, 0), Double(nb - 1))
        let f0 = Int(uc), b0 = Int(vc)
        let f1 = min(f0 + 1, nf - 1), b1 = min(b0 + 1, nb - 1)
        let du = uc - Double(f0), dv = vc - Double(b0)
        let a = Double(o[f0 * nb + b0]), b = Double(o[f1 * nb + b0])
        let c = Double(o[f0 * nb + b1]), d = Double(o[f1 * nb + b1])
        return (a * (1 - du) + b * du) * (1 - dv) + (c * (1 - du) + d * du) * dv
    }

    /// min…max of the finite values ((0, 1) when there are none); symmetric: −m…m with m = max |v|.
    static func finiteRange(_ values: [Float], symmetric: Bool) -> (lo: Double, hi: Double) {
        var lo = Double.infinity, hi = -Double.infinity
        for v in values where v.isFinite {
            lo = min(lo, Double(v))
            hi = max(hi, Double(v))
        }
        guard lo <= hi else { return (0, 1) }
        if symmetric {
            let m = max(abs(lo), abs(hi))
            return m > 0 ? (-m, m) : (-1, 1)
        }
        return (lo, hi)
    }

    /// Bands to label on the y axis, spaced so their labels do not touch.
    func yTicks() -> [(band: Int, label: String)] {
        let glyphH = BitmapFont.glyphHeight * textScale
        let rowsPerLabel = max(1, Int((Double(glyphH) * 2.2 / Double(pixelsPerBand)).rounded(.up)))
        let count = max(1, min(bands, bands / rowsPerLabel))
        let step = max(1, (bands - 1) / max(1, count - 1))
        return stride(from: 0, to: bands, by: step).map { b in (b, Self.formatHz(bandCentersHz[b])) }
    }

    static func formatHz(_ hz: Double) -> String {
        guard hz.isFinite else { return "?" }
        // Three significant figures: 62.5 → "62", 1234 → "1230"; finer detail is noise here.
        if abs(hz) >= 1000 {
            let mag = pow(10, floor(log10(abs(hz))) - 2)
            return String(format: "%.0f", (hz / mag).rounded() * mag)
        }
        return String(format: "%.0f", hz)
    }

    private func drawAxes(_ image: inout Raster, _ L: Layout) {
        let s = textScale, tick = 2 + 2 * s
        let glyphH = BitmapFont.glyphHeight * s
        let bottom = L.plotY + L.plotHeight
        // Frame around the matrix.
        image.strokeRect(x: L.plotX - 1, y: L.plotY - 1, width: L.plotWidth + 2, height: L.plotHeight + 2, .axis)

        // Time: nice ticks over the frames' span, labelled in seconds.
        let duration = Double(frames) * secondsPerFrame
        let ticks = Ticks.nice(0, duration, target: max(2, min(10, L.plotWidth / (BitmapFont.width("0.00", scale: s) * 3))))
        for t in ticks.values where t >= 0 && t <= duration * (1 + 1e-9) {
            let x = L.plotX + min(L.plotWidth - 1, Int((t / duration * Double(L.plotWidth)).rounded()))
            image.fill(x: x, y: bottom + 1, width: 1, height: tick, .axis)
            image.text(ticks.format(t), x: x, y: bottom + tick + 3, scale: s, .axis, align: .center)
        }
        image.text("time (s)", x: L.plotX + L.plotWidth / 2, y: bottom + tick + 3 + glyphH + 6, scale: s, .axis, align: .center)

        // Frequency: ticks at band centres.
        for (b, label) in yTicks() {
            let cell = L.cell(frame: 0, band: b)
            let y = cell.y + cell.height / 2
            image.fill(x: L.plotX - 1 - tick, y: y, width: tick, height: 1, .axis)
            image.text(label, x: L.plotX - tick - 4, y: y, scale: s, .axis, align: .right, vAlign: .middle)
        }
        image.text("frequency (Hz)", x: 8, y: L.plotY + L.plotHeight / 2, scale: s, .axis, align: .center, rotated: true)
    }

    private func drawColorBar(_ image: inout Raster, _ L: Layout, _ map: ColorMap, _ range: (lo: Double, hi: Double), label: String) {
        let s = textScale, tick = 2 + 2 * s
        let h = L.colorBarHeight
        for i in 0..<h {
            let t = (Double(h - 1 - i) + 0.5) / Double(h)
            image.fill(x: L.colorBarX, y: L.colorBarY + i, width: L.colorBarWidth, height: 1, map.color(t))
        }
        image.strokeRect(x: L.colorBarX - 1, y: L.colorBarY - 1, width: L.colorBarWidth + 2, height: h + 2, .axis)
        image.text(label, x: L.colorBarX, y: L.colorBarY - 6, scale: s, .axis, align: .left, vAlign: .bottom)
        for (v, text) in colorBarTicks(range) {
            let y = L.colorBarY + h - 1 - Int(((v - range.lo) / (range.hi - range.lo) * Double(h - 1)).rounded())
            let x = L.colorBarX + L.colorBarWidth + 1
            image.fill(x: x, y: y, width: tick, height: 1, .axis)
            image.text(text, x: x + tick + 3, y: y, scale: s, .axis, align: .left, vAlign: .middle)
        }
    }

    private func colorBarTicks(_ range: (lo: Double, hi: Double)) -> [(value: Double, label: String)] {
        guard range.hi > range.lo else { return [] }
        let h = bands * pixelsPerBand
        let ticks = Ticks.nice(range.lo, range.hi, target: max(2, min(6, h / (BitmapFont.glyphHeight * textScale * 3))))
        return ticks.values.map { ($0, ticks.format($0)) }
    }
}
