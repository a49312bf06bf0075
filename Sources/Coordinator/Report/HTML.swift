import Foundation
import Shared

/// Small pieces for writing the report's HTML by hand: escaping, tables, embedded files. The page
/// must open anywhere without a network, so everything it shows is inline (SVG) or a data: URI.
enum HTML {
    /// Text and attribute values made safe for HTML.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func dataURI(_ data: Data, mime: String) -> String {
        "data:\(mime);base64," + data.base64EncodedString()
    }

    /// A number for a table cell: `digits` decimals, "–" when missing or not finite.
    static func number(_ v: Double?, _ digits: Int = 3) -> String {
        guard let v, v.isFinite else { return "–" }
        return String(format: "%.\(digits)f", v)
    }

    static func percent(_ v: Double?, _ digits: Int = 1) -> String {
        guard let v, v.isFinite else { return "–" }
        return String(format: "%.\(digits)f %%", 100 * v)
    }

    static func bytes(_ n: Int) -> String {
        if n < 1024 { return "\(n) B" }
        if n < 1 << 20 { return String(format: "%.1f KiB", Double(n) / 1024) }
        return String(format: "%.1f MiB", Double(n) / Double(1 << 20))
    }

    /// A table from already-escaped cell HTML; `numeric` right-aligns those columns.
    static func table(_ header: [String], _ rows: [[String]], numeric: Set<Int> = [], cls: String? = nil) -> String {
        var s = "<table" + (cls.map { " class=\"\($0)\"" } ?? "") + "><thead><tr>"
        for (i, h) in header.enumerated() { s += "<th" + (numeric.contains(i) ? " class=\"num\"" : "") + ">\(h)</th>" }
        s += "</tr></thead><tbody>"
        for r in rows {
            s += "<tr>"
            for (i, c) in r.enumerated() { s += "<td" + (numeric.contains(i) ? " class=\"num\"" : "") + ">\(c)</td>" }
            s += "</tr>"
        }
        return s + "</tbody></table>"
    }

    /// Two-column key/value table (keys and values escaped here).
    static func facts(_ pairs: [(String, String)]) -> String {
        "<table class=\"facts\"><tbody>" + pairs.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }.joined()
            + "</tbody></table>"
    }

    /// What is missing and how to produce it, in place of a section's content.
    static func missing(_ what: String, fix: String? = nil) -> String {
        "<div class=\"missing\"><strong>Not produced:</strong> \(escape(what))"
            + (fix.map { "<br>To produce it: <code>\(escape($0))</code>" } ?? "") + "</div>"
    }

    /// A problem with an input that the page works around (shown, never fatal).
    static func notice(_ text: String) -> String {
        "<div class=\"notice\">\(escape(text))</div>"
    }

    static func code(_ s: String) -> String { "<code>\(escape(s))</code>" }
}

/// Inline SVG charts. Charts from `Shared/Plot` are standalone documents with fixed ids (the heatmap's
/// colour-bar gradient); inlined several to a page, equal ids would make every colour bar use the
/// first chart's gradient, so each chart gets its own prefix.
struct InlineSVG {
    private var counter = 0

    mutating func embed(_ svg: String, caption: String? = nil, cls: String = "chart") -> String {
        counter += 1
        var text = svg
        if let start = text.range(of: "<svg") { text = String(text[start.lowerBound...]) }
        // Ids are written as id="x" and referenced as url(#x) or href="#x" by the SVG writer.
        var ids: [String] = []
        var rest = text[...]
        while let r = rest.range(of: " id=\"") {
            let after = rest[r.upperBound...]
            guard let end = after.firstIndex(of: "\"") else { break }
            ids.append(String(after[..<end]))
            rest = after[end...]
        }
        for id in Set(ids) {
            let unique = "c\(counter)-\(id)"
            text = text.replacingOccurrences(of: "id=\"\(id)\"", with: "id=\"\(unique)\"")
                .replacingOccurrences(of: "url(#\(id))", with: "url(#\(unique))")
                .replacingOccurrences(of: "href=\"#\(id)\"", with: "href=\"#\(unique)\"")
        }
        return "<figure class=\"\(cls)\">" + text + (caption.map { "<figcaption>\(HTML.escape($0))</figcaption>" } ?? "") + "</figure>"
    }
}
