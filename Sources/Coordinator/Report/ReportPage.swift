import Foundation
import Shared

/// The page around the sections: style, navigation, and a small script that records in the page
/// itself anything that failed to run or load (an element `.report-error` in `#report-status`),
/// so that a headless browser's DOM shows it (the report test looks for it).
enum ReportPage {
    static func render(title: String, subtitle: String, sections: [ReportSection]) -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="ser report">
        <title>\(HTML.escape(title))</title>
        <script>\(errorCapture)</script>
        <style>\(style)</style>
        </head>
        <body>
        <header><h1>\(HTML.escape(title))</h1><p class="small">\(HTML.escape(subtitle))</p>
        <nav>\(sections.map { "<a href=\"#\($0.id)\">\(HTML.escape($0.title))</a>" }.joined(separator: " "))</nav>
        <div id="report-status"></div></header>
        <main>

        """
        for s in sections {
            html += "<section id=\"\(s.id)\"><h2>\(HTML.escape(s.title))</h2>\n\(s.body)\n</section>\n"
        }
        html += """
        </main>
        <script>\(loadCheck)</script>
        </body>
        </html>

        """
        return html
    }

    /// Registered first, in capture mode, so that script errors and images or audio that fail to
    /// decode anywhere in the page are caught.
    static let errorCapture = """
    (function () {
      function mark(text) {
        var show = function () {
          var box = document.getElementById('report-status');
          var d = document.createElement('div');
          d.className = 'report-error';
          d.textContent = text;
          (box || document.body).appendChild(d);
        };
        if (document.body) show(); else document.addEventListener('DOMContentLoaded', show);
      }
      window.addEventListener('error', function (e) {
        var t = e.target;
        if (t && t !== window && t.tagName) mark('could not load ' + t.tagName.toLowerCase() + (t.alt ? ' (' + t.alt + ')' : ''));
        else mark('script error: ' + (e.message || e));
      }, true);
      window.addEventListener('unhandledrejection', function (e) { mark('script error: ' + e.reason); });
      window.reportMark = mark;
    })();
    """

    /// After loading: counts what rendered, into data attributes of <body> (images decoded, audio
    /// whose header the browser could read).
    static let loadCheck = """
    (function () {
      var body = document.body;
      var audios = Array.prototype.slice.call(document.querySelectorAll('audio'));
      var ready = 0, failed = 0;
      function update() {
        body.setAttribute('data-audio', audios.length + ' total, ' + ready + ' ready, ' + failed + ' failed');
      }
      audios.forEach(function (a) {
        if (a.readyState >= 1) { ready++; return; }
        a.addEventListener('loadedmetadata', function () { ready++; update(); });
        a.addEventListener('error', function () { failed++; update(); window.reportMark('could not decode audio'); });
      });
      update();
      window.addEventListener('load', function () {
        var imgs = Array.prototype.slice.call(document.images);
        var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
        bad.forEach(function (i) { window.reportMark('image did not decode: ' + i.alt); });
        body.setAttribute('data-images', imgs.length + ' total, ' + (imgs.length - bad.length) + ' decoded');
        body.setAttribute('data-charts', String(document.querySelectorAll('figure.chart svg').length));
      });
    })();
    """

    static let style = """
    :root { --ink: #222; --muted: #666; --line: #ddd; --accent: #1f77b4; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fafafa; }
    header { background: #fff; border-bottom: 1px solid var(--line); padding: 16px 24px 8px; position: sticky; top: 0; z-index: 2; }
    header h1 { margin: 0 0 2px; font-size: 22px; }
    nav a { display: inline-block; margin: 6px 14px 0 0; color: var(--accent); text-decoration: none; }
    nav a:hover { text-decoration: underline; }
    main { max-width: 1240px; margin: 0 auto; padding: 8px 24px 48px; }
    section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 20px 16px; margin: 18px 0; scroll-margin-top: 96px; }
    h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
    h3 { font-size: 15px; margin: 18px 0 6px; }
    table { border-collapse: collapse; margin: 8px 0; }
    th, td { border-bottom: 1px solid #eee; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
    thead th { border-bottom: 1px solid #bbb; }
    td.num, th.num { text-align: right; padding-left: 10px; font-variant-numeric: tabular-nums; }
    td.num { white-space: nowrap; }
    table.facts th { font-weight: 600; color: var(--muted); white-space: nowrap; padding-right: 18px; }
    table.compact { font-size: 12px; }
    code { font: 12px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; background: #f2f2f2; padding: 1px 4px; border-radius: 3px; }
    details { margin: 8px 0; }
    summary { cursor: pointer; color: var(--accent); }
    .small { font-size: 12px; color: var(--muted); }
    .tag { font-size: 11px; background: #e8f0f8; color: var(--accent); border-radius: 3px; padding: 0 4px; }
    .row { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
    figure { margin: 8px 0; }
    figure.chart svg { max-width: 100%; height: auto; display: block; }
    figure.half { flex: 1 1 540px; max-width: 600px; }
    figure.third { flex: 1 1 360px; max-width: 420px; }
    figure.side { flex: 1 1 400px; max-width: 540px; }
    .missing { background: #f6f6f6; border-left: 4px solid #aaa; padding: 8px 12px; margin: 8px 0; color: #444; }
    .notice { background: #fff8e5; border-left: 4px solid #e0a800; padding: 6px 12px; margin: 8px 0; font-size: 13px; }
    .report-error { background: #fde8e8; border-left: 4px solid #d62728; padding: 6px 12px; margin: 6px 0; }
    .gallery-file { border-top: 1px solid var(--line); margin-top: 12px; }
    .methods { display: flex; flex-wrap: wrap; gap: 12px; }
    figure.method { flex: 1 1 360px; max-width: 400px; margin: 0; }
    figure.method img { width: 100%; height: auto; border: 1px solid #eee; }
    figure.method figcaption { font-size: 12px; margin-top: 4px; }
    .player { display: flex; align-items: center; gap: 8px; font-size: 12px; margin: 4px 0; }
    .player span { width: 140px; color: var(--muted); }
    .player audio { height: 32px; flex: 1; min-width: 0; }
    .correct { color: #2ca02c; font-weight: 600; }
    .wrong { color: #d62728; font-weight: 600; }
    @media print { header { position: static; } section { break-inside: avoid; } }
    """
}
