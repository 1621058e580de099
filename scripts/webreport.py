#!/usr/bin/env python3
# needs: markdown
"""report.html beside REPORT.md: the same report as a web page.

    scripts/py.sh scripts/webreport.py RESULTS_DIR

Renders the Markdown that scripts/report.py wrote (DIR/REPORT.md) with
Debian's python3-markdown (tables, toc for the heading anchors,
fenced_code), so that the page and REPORT.md come from one text and cannot
disagree: the same sections, verdicts and warnings.  The page is one
self-contained file: every chart image (charts/NAME.png) is replaced by the
inline SVG that plot.py drew beside it (charts/NAME.svg; its ids prefixed
per chart, since matplotlib reuses "patch_1" and glyph ids in every file),
or by the PNG as a data: URI when there is no SVG; the CSS and the few
lines of plain JavaScript that sort the tables are inline; nothing is
fetched from the network.  A link of the report to another Markdown file
of the folder (SCALE.md, TRANSPORT.md) points to its rendering, written
beside it the same way (scale.html, transport.html).  Prints the path of
report.html.

The page records JavaScript errors in the attribute data-js-errors of the
<html> element and sets data-pb-ready="1" once the tables are sortable;
opened with #pb-selftest it sorts every table by its second column,
descending, so that a headless browser's DOM dump shows whether the sort
works (tests/e2e_html.sh).
"""

import argparse
import base64
import html
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbresults as pb  # noqa: E402

pb.require(["markdown"], "webreport.py (report.html)")
import markdown  # noqa: E402

EXTENSIONS = ["tables", "toc", "fenced_code"]

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d1d1f; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5em 2em 4em; }
h1 { font-size: 1.7em; border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.35em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.15em; margin-top: 1.6em; } h4 { font-size: 1em; }
a { color: #0b5cad; }
nav.contents ul { list-style: none; padding: .5em .8em; margin: 1em 0; background: #f6f8fa;
                  border: 1px solid #d0d7de; border-radius: 4px; font-size: 14px; }
nav.contents li { display: inline; }
nav.contents li + li::before { content: " \\00b7  "; color: #8c959f; }
code { font: .88em/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: #f3f4f6;
       padding: .1em .3em; border-radius: 3px; overflow-wrap: anywhere; }
pre { background: #f3f4f6; padding: .8em 1em; overflow-x: auto; border-radius: 4px; }
pre code { padding: 0; background: none; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .3em .5em; vertical-align: top; }
th { background: #f3f4f6; position: relative; text-align: left; }
td.num { white-space: nowrap; }
td.long { text-align: left !important; min-width: 11em; }
tbody tr:nth-child(even) { background: #fafbfc; }
table.sortable th { cursor: pointer; user-select: none; padding-right: 1.4em; }
table.sortable th::after { content: "\\2195"; position: absolute; right: .35em; color: #9aa4ae; }
table.sortable th[aria-sort=ascending]::after { content: "\\25B2"; color: #1d1d1f; }
table.sortable th[aria-sort=descending]::after { content: "\\25BC"; color: #1d1d1f; }
.charts { display: flex; flex-wrap: wrap; gap: 1em 2.5em; align-items: flex-start; margin: 1em 0; }
figure { margin: 0; max-width: 100%; }
figcaption { font-size: 13px; color: #444; margin-top: .2em; }
svg.chart { display: block; width: 100%; max-width: 100%; height: auto; margin: .5em 0 .3em; }
img.chart { display: block; max-width: 100%; height: auto; }
.missing-chart { color: #a40e26; font-style: italic; }
"""

# Records errors where a DOM dump can see them (tests/e2e_html.sh); first in
# <head> so that it catches the errors of everything after it.
ERRORS_JS = """
window.onerror = function (msg, src, line) {
  var el = document.documentElement, prev = el.getAttribute("data-js-errors");
  el.setAttribute("data-js-errors", (prev ? prev + " | " : "") + msg + " (line " + line + ")");
};
"""

# Click a header to sort by that column, again to reverse.  A cell sorts by
# the number it starts with (after the marks of report.py: best, spread,
# failed), scaled by a size suffix (k, M, G, KiB, MiB, GiB, kB, MB, GB);
# cells without one sort after the numbers, as text; empty and dash cells
# last, in either direction.  #pb-selftest clicks the second header of
# every table twice (descending).
SORT_JS = r"""
(function () {
  var SCALE = {k: 1e3, K: 1e3, M: 1e6, G: 1e9, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9,
               KiB: 1024, MiB: 1048576, GiB: 1073741824, B: 1};
  function key(text) {
    var s = text.replace(/[\u2605\u2020\u2717]/g, "").trim();
    if (s === "" || s === "\u2013" || s === "-" || s === "unknown") return [2, 0, ""];
    var m = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?/.exec(s);
    if (!m) return [1, 0, s];
    var unit = /^\s*(KiB|MiB|GiB|kB|KB|MB|GB|B|k|K|M|G)(?![A-Za-z])/.exec(s.slice(m[0].length));
    return [0, parseFloat(m[0]) * (unit ? SCALE[unit[1]] : 1), s];
  }
  // Numbers, then text, then blanks, in either direction.
  function compare(a, b, desc) {
    if (a[0] !== b[0]) return a[0] - b[0];
    var c = a[0] === 0 && a[1] !== b[1] ? a[1] - b[1] : a[2].localeCompare(b[2], undefined, {numeric: true});
    return desc ? -c : c;
  }
  function sortBy(table, th, col) {
    var desc = th.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r) {
      return {row: r, key: key(r.cells[col] ? r.cells[col].textContent : "")};
    });
    rows.sort(function (a, b) { return compare(a.key, b.key, desc); });
    rows.forEach(function (r) { body.appendChild(r.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", desc ? "descending" : "ascending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    table.classList.add("sortable");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, th, col); });
    });
  });
  if (location.hash === "#pb-selftest") {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      var th = table.tHead.rows[0].cells[1];
      if (th) { th.click(); th.click(); }
    });
  }
  document.documentElement.setAttribute("data-pb-ready", "1");
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title>
<script>%(errors_js)s</script>
<style>%(css)s</style>
</head>
<body>
<main>
%(body)s
</main>
<script>%(sort_js)s</script>
</body>
</html>
"""


# -- charts --------------------------------------------------------------------

def pt_to_px(value):
    """'403.2pt' -> 538 (CSS px at 96 dpi), None when not a length."""
    m = re.match(r"^\s*([\d.]+)\s*(pt|px)?\s*$", value or "")
    if not m:
        return None
    v = float(m.group(1))
    return round(v * 96 / 72) if m.group(2) in (None, "pt") else round(v)


def prefix_ids(svg, prefix):
    """Every id="X" of the SVG renamed prefix-X, and every reference to one
    of them (url(#X), href="#X", xlink:href="#X") with it, so that several
    SVGs share one HTML document without colliding ids."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    new = (lambda name: "%s-%s" % (prefix, name) if name in ids else name)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: 'id="%s"' % new(m.group(1)), svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: '%s="#%s"' % (m.group(1), new(m.group(2))), svg)
    return re.sub(r"url\(#([^)]+)\)", lambda m: "url(#%s)" % new(m.group(1)), svg)


def inline_svg(svg, prefix, title):
    """The SVG file's text as an element for an HTML page: no XML prolog,
    doctype, comments or metadata (whose RDF names web addresses), ids
    prefixed, its style sheet scoped to it, sized by its viewBox to the
    page's width at most its own."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("no <svg> element")
    svg = prefix_ids(svg[start:].strip(), prefix)
    svg = re.sub(r"(<style[^>]*>)\s*\*\s*\{", lambda m: "%s#%s *{" % (m.group(1), prefix), svg)
    head = re.match(r"<svg\b[^>]*>", svg).group(0)
    width = pt_to_px((re.search(r'\bwidth="([^"]*)"', head) or [None, None])[1])
    new_head = re.sub(r'\s(?:width|height|id|class|role)="[^"]*"', "", head)
    attrs = ' id="%s" class="chart" role="img" aria-label="%s"' % (prefix, html.escape(title, quote=True))
    if width:
        attrs += ' style="max-width: %dpx"' % width
    return new_head[:-1].rstrip() + attrs + ">" + svg[len(head):]


def chart_html(base, src, alt, prefix):
    """What replaces <img src="charts/NAME.png">: the SVG beside the PNG
    inlined, else the PNG as a data: URI, else a visible note; and the
    chart's width in CSS px (None when unknown)."""
    path = os.path.normpath(os.path.join(base, src))
    svg_path = os.path.splitext(path)[0] + ".svg"
    if os.path.isfile(svg_path):
        with open(svg_path, encoding="utf-8") as f:
            svg = inline_svg(f.read(), prefix, alt)
        m = re.search(r'max-width: (\d+)px', svg[:svg.find(">")])
        return svg, int(m.group(1)) if m else None
    if os.path.isfile(path) and path.endswith(".png"):
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        return '<img class="chart" alt="%s" src="data:image/png;base64,%s">' % (
            html.escape(alt, quote=True), data), None
    return '<span class="missing-chart">[chart %s: %s is missing]</span>' % (html.escape(alt), html.escape(src)), None


def image(tag, base, count):
    """One <img> tag of the rendered Markdown as (markup, width)."""
    src = html.unescape((re.search(r'\bsrc="([^"]*)"', tag) or [None, ""])[1])
    alt = html.unescape((re.search(r'\balt="([^"]*)"', tag) or [None, ""])[1])
    if re.match(r"^[a-z][a-z0-9+.-]*:|^//", src, flags=re.I):
        return (tag if src.startswith("data:") else html.escape(alt)), None  # never fetch
    count[0] += 1
    return chart_html(base, src, alt, "chart%d" % count[0])


def inline_images(body, base):
    """Every <img> of the rendered Markdown replaced by chart_html.  A chart
    alone in its paragraph, with the paragraph after it that report.py
    writes as its caption (*caption* ([SVG](...))), becomes a <figure>;
    figures in a row share a flex box, side by side where the page is wide
    enough."""
    count = [0]

    def figure(m):
        markup, width = image(m.group(1), base, count)
        cap = "<figcaption>%s</figcaption>" % m.group(2) if m.group(2) else ""
        style = ' style="width: %dpx"' % width if width else ""
        return "<figure%s>%s%s</figure>\n" % (style, markup, cap)
    body = re.sub(r"<p>\s*(<img\b[^>]*>)\s*</p>\s*(?:<p>(<em>.*?)</p>\s*)?", figure, body, flags=re.S)
    body = re.sub(r"(?:<figure\b.*?</figure>\s*)+",
                  lambda m: '<div class="charts">\n%s</div>\n' % m.group(0), body, flags=re.S)
    return re.sub(r"<img\b[^>]*>", lambda m: image(m.group(0), base, count)[0], body)


# -- pages ---------------------------------------------------------------------

def html_name(md_name):
    """REPORT.md -> report.html, SCALE.md -> scale.html."""
    return os.path.splitext(md_name)[0].lower() + ".html"


def relink(body, base):
    """Links to Markdown files of the folder pointed at their .html
    renderings; returns the new body and the Markdown files linked."""
    linked = []

    def one(m):
        target, frag = m.group(2), m.group(3) or ""
        if re.match(r"^[a-z][a-z0-9+.-]*:|^/", target, flags=re.I):
            return m.group(0)
        path = os.path.normpath(os.path.join(base, html.unescape(target)))
        if not os.path.isfile(path):
            return m.group(0)
        linked.append(path)
        return '%s"%s%s"' % (m.group(1), html.escape(os.path.join(os.path.dirname(target),
                                                                   html_name(os.path.basename(target)))), frag)
    body = re.sub(r'(<a\b[^>]*\bhref=)"([^"#]+\.md)(#[^"]*)?"', one, body)
    return body, linked


def cell(m):
    """A short right-aligned cell (a number with its range) kept on one
    line; a long one (a verdict, a note) wrapped, left-aligned, not too
    narrow."""
    style, inner = m.group(1) or "", m.group(2)
    n = len(html.unescape(re.sub(r"<[^>]+>", "", inner)))
    cls = ' class="num"' if "right" in style and n <= 32 else ' class="long"' if n > 48 else ""
    return "<td%s%s>%s</td>" % (style, cls, inner)


def fix_tables(body):
    """Tables in a scrolling box; an escaped pipe inside a code span of a
    cell read as a pipe, as GitHub's Markdown does (report.py escapes every
    | of a cell, python-markdown keeps the backslash in code); cells
    classed by length (cell)."""
    def one(m):
        t = re.sub(r"<code>.*?</code>", lambda c: c.group(0).replace("\\|", "|"), m.group(0), flags=re.S)
        return re.sub(r"<td( style=\"[^\"]*\")?>(.*?)</td>", cell, t, flags=re.S)
    body = re.sub(r"<table>.*?</table>", one, body, flags=re.S)
    return body.replace("<table>", '<div class="table-wrap"><table>').replace("</table>", "</table></div>")


def contents(toc_tokens):
    """A line of links to the sections (the ## headings), put after the
    first paragraph: a navigation aid, not a section of its own."""
    h2 = [t for top in toc_tokens for t in ([top] if top["level"] == 2 else top["children"]) if t["level"] == 2]
    if len(h2) < 3:
        return ""
    links = "".join('<li><a href="#%s">%s</a></li>' % (html.escape(t["id"], quote=True), t["name"]) for t in h2)
    return '<nav class="contents" aria-label="sections"><ul>%s</ul></nav>\n' % links


def render(text, base):
    """The Markdown text as a whole HTML page, and the Markdown files it
    links to; base is the folder the text's relative paths start from."""
    md = markdown.Markdown(extensions=EXTENSIONS, output_format="html")
    body = md.convert(text)
    body, linked = relink(inline_images(fix_tables(body), base), base)
    nav = contents(md.toc_tokens)
    at = body.find("</p>") + 4 if body.startswith("<h1") and "</p>" in body else 0
    body = body[:at] + "\n" + nav + body[at:]
    m = re.search(r"^# (.+)$", text, flags=re.M)
    title = m.group(1).strip() if m else "poolbench report"
    page = PAGE % {"title": html.escape(title), "errors_js": ERRORS_JS, "css": CSS, "body": body,
                   "sort_js": SORT_JS}
    return page, linked


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_pages(md_path):
    """md_path rendered beside it (REPORT.md -> report.html), then every
    Markdown file it links to, once each; returns the paths written."""
    todo, done, written = [os.path.abspath(md_path)], set(), []
    while todo:
        path = todo.pop(0)
        if path in done:
            continue
        done.add(path)
        with open(path, encoding="utf-8") as f:
            page, linked = render(f.read(), os.path.dirname(path))
        out = os.path.join(os.path.dirname(path), html_name(os.path.basename(path)))
        write_atomic(out, page)
        written.append(out)
        todo.extend(linked)
    return written


def main():
    ap = argparse.ArgumentParser(description="Write report.html beside a results folder's REPORT.md.")
    ap.add_argument("results", metavar="DIR", help="results folder with REPORT.md (scripts/report.py)")
    args = ap.parse_args()
    md = os.path.join(args.results, "REPORT.md")
    if not os.path.isfile(md):
        print("poolbench: %s has no REPORT.md: write it first (scripts/report.py or make report RESULTS=%s)"
              % (args.results, args.results), file=sys.stderr)
        return 2
    written = write_pages(md)
    print(os.path.join(args.results, os.path.basename(written[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
