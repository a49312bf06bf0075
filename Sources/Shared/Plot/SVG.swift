import Foundation

/// A small SVG writer: elements appended in drawing order, rendered as one self-contained document
/// (a viewBox, no external fonts, images or scripts), ready to inline in an HTML report.
public struct SVG: Sendable {
    public let width: Double
    public let height: Double
    private var defs: [String] = []
    private var body: [String] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// Text and attribute values made safe for XML: markup characters escaped, and characters XML
    /// 1.0 forbids (most control characters) dropped.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || (0xFFFE...0xFFFF).contains(u.value) { continue }
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// A coordinate: at most two decimals, no "-0", never NaN (drawn at 0 rather than breaking the file).
    public static func num(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let r = (v * 100).rounded() / 100
        if r == r.rounded() { return String(Int(r)) }
        var s = String(format: "%.2f", r)
        while s.hasSuffix("0") { s.removeLast() }
        return s == "-0" ? "0" : s
    }

    private static func attrs(_ pairs: [(String, String?)]) -> String {
        pairs.compactMap { k, v in v.map { " \(k)=\"\(escape($0))\"" } }.joined()
    }

    private static func titled(_ open: String, _ name: String, _ title: String?) -> String {
        guard let title else { return open + "/>" }
        return open + "><title>\(escape(title))</title></\(name)>"
    }

    public mutating func rect(x: Double, y: Double, width w: Double, height h: Double, fill: String,
                              stroke: String? = nil, strokeWidth: Double? = nil, cls: String? = nil, title: String? = nil) {
        let open = "<rect" + SVG.attrs([("class", cls), ("x", SVG.num(x)), ("y", SVG.num(y)),
                                        ("width", SVG.num(max(0, w))), ("height", SVG.num(max(0, h))),
                                        ("fill", fill), ("stroke", stroke), ("stroke-width", strokeWidth.map(SVG.num))])
        body.append(SVG.titled(open, "rect", title))
    }

    public mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String,
                              width: Double = 1, dash: String? = nil, cls: String? = nil) {
        body.append("<line" + SVG.attrs([("class", cls), ("x1", SVG.num(x1)), ("y1", SVG.num(y1)), ("x2", SVG.num(x2)),
                                          ("y2", SVG.num(y2)), ("stroke", stroke), ("stroke-width", SVG.num(width)),
                                          ("stroke-dasharray", dash)]) + "/>")
    }

    /// A path from its "d" commands.
    public mutating func path(_ d: String, stroke: String, width: Double = 1.5, fill: String = "none",
                              dash: String? = nil, cls: String? = nil, title: String? = nil) {
        let open = "<path" + SVG.attrs([("class", cls), ("d", d), ("fill", fill), ("stroke", stroke),
                                        ("stroke-width", SVG.num(width)), ("stroke-linejoin", "round"),
                                        ("stroke-linecap", "round"), ("stroke-dasharray", dash)])
        body.append(SVG.titled(open, "path", title))
    }

    public mutating func circle(cx: Double, cy: Double, r: Double, fill: String, stroke: String? = nil,
                                opacity: Double? = nil, cls: String? = nil, title: String? = nil) {
        let open = "<circle" + SVG.attrs([("class", cls), ("cx", SVG.num(cx)), ("cy", SVG.num(cy)), ("r", SVG.num(r)),
                                          ("fill", fill), ("stroke", stroke), ("fill-opacity", opacity.map(SVG.num))])
        body.append(SVG.titled(open, "circle", title))
    }

    public enum Anchor: String, Sendable { case start, middle, end }

    /// Text with its baseline at y (`middle` centres it vertically on y instead); `rotate` in degrees
    /// around (x, y).
    public mutating func text(_ s: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
                              fill: String = "#222222", bold: Bool = false, rotate: Double? = nil,
                              middle: Bool = false, cls: String? = nil) {
        body.append("<text" + SVG.attrs([("class", cls), ("x", SVG.num(x)), ("y", SVG.num(y)),
                                          ("font-size", SVG.num(size)), ("text-anchor", anchor.rawValue),
                                          ("dominant-baseline", middle ? "central" : nil),
                                          ("fill", fill), ("font-weight", bold ? "bold" : nil),
                                          ("transform", rotate.map { "rotate(\(SVG.num($0)) \(SVG.num(x)) \(SVG.num(y)))" })])
                    + ">\(SVG.escape(s))</text>")
    }

    /// A vertical gradient of a colour map (bottom = 0, top = 1), referenced as `url(#id)`.
    public mutating func verticalGradient(id: String, map: ColorMap, stops: Int = 17) {
        var s = "<linearGradient id=\"\(SVG.escape(id))\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for i in 0..<stops {
            let t = Double(i) / Double(stops - 1)
            s += "<stop offset=\"\(SVG.num(t * 100))%\" stop-color=\"\(map.color(t).hex)\"/>"
        }
        defs.append(s + "</linearGradient>")
    }

    /// Starts a group; close it with `endGroup()`.
    public mutating func beginGroup(cls: String? = nil, transform: String? = nil) {
        body.append("<g" + SVG.attrs([("class", cls), ("transform", transform)]) + ">")
    }

    public mutating func endGroup() { body.append("</g>") }

    /// The document. Fonts are generic families, so it renders the same offline.
    public func render() -> String {
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(SVG.num(width))\" height=\"\(SVG.num(height))\" "
        out += "viewBox=\"0 0 \(SVG.num(width)) \(SVG.num(height))\" font-family=\"sans-serif\">\n"
        if !defs.isEmpty { out += "<defs>" + defs.joined() + "</defs>\n" }
        out += "<rect x=\"0\" y=\"0\" width=\"\(SVG.num(width))\" height=\"\(SVG.num(height))\" fill=\"#ffffff\"/>\n"
        out += body.joined(separator: "\n")
        out += "\n</svg>\n"
        return out
    }
}
