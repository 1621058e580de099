# needs: markdown matplotlib
"""test_webreport.py: unit tests of scripts/webreport.py, the conversion of
REPORT.md to report.html: every heading and table of the Markdown is in the
page, with the same cells; the charts are inlined as SVG (real matplotlib
SVGs, whose ids repeat from one file to the next) with ids unique in the
page and every url(#..) / href="#.." pointing inside its own chart; a chart
without SVG comes as a data: URI, a missing one as a visible note; nothing
is loaded from elsewhere; a link to another Markdown file of the folder
points to its rendering, written beside it.  Run by tests/e2e_html.sh.
"""
import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
sys.path.insert(0, HERE)
import webreport  # noqa: E402
from check_report_html import md_tables  # noqa: E402  (the same reading of REPORT.md's tables)

import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPORT = """# poolbench report: test-host

Results folder `res`. Every number is a **median**.

## Verdicts

- **primes**: threads at 2 workers, p < 0.05.

## Workloads

### primes (CPU-bound)

| executor | workers | throughput (tasks/s) | notes |
|---|--:|--:|---|
| seq | 1 | 338 (336..342) | |
| threads | 4 | **634 (623..638) \u2605** | a \\| b |
| procs | 2 | 626 (608..633) | \u2020 spread `a\\|b` |

![Speedup: primes](charts/speedup_primes.png)

*Speedup of each executor.* ([SVG](charts/speedup_primes.svg))

![Latency: primes](charts/latency_primes.png)

*Latency percentiles.* ([SVG](charts/latency_primes.svg))

![Only a PNG](charts/png_only.png)

*No SVG beside it.*

![Gone](charts/gone.png)

## Other reports in this folder

- [SCALE.md](SCALE.md): the scale step.
- [Missing.md](MISSING.md): not there.

## Charts not drawn

| kind | reason |
|---|---|
| hyperfine | hyperfine.json absent |
"""

SCALE = """# Scale

| tasks | ns/task |
|---|--:|
| 1k | 346 |
| 1M | 124 |

![scale](charts/scale.png)
"""


class Page(html.parser.HTMLParser):
    """Headings (level, text), tables (rows of cell texts), every id, every
    tag with its attributes, and the id of the <svg> each tag is in."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.headings, self.tables, self.ids, self.tags = [], [], [], []
        self.svg, self.text, self.cell = None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a, self.svg))
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "svg":
            self.svg = a.get("id")
        elif re.fullmatch(r"h[1-6]", tag):
            self.text = [int(tag[1]), ""]
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg = None
        elif re.fullmatch(r"h[1-6]", tag) and self.text:
            self.headings.append(tuple(self.text))
            self.text = None
        elif tag in ("td", "th"):
            self.tables[-1][-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.text is not None:
            self.text[1] += data
        if self.cell is not None:
            self.cell += data


def parse(page):
    p = Page()
    p.feed(page)
    p.close()
    return p


def md_headings(text):
    out = []
    for m in re.finditer(r"^(#{1,6}) (.+)$", text, flags=re.M):
        out.append((len(m.group(1)), re.sub(r"[*`]", "", m.group(2)).strip()))
    return out


def draw(path, ext):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 4], [1, 1.9, 1.8], marker="o", label="threads")
    ax.set_title("speedup")
    ax.legend()
    fig.savefig(path + "." + ext)
    plt.close(fig)


class WebReport(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="webreport.")
        os.makedirs(os.path.join(self.dir, "charts"))
        for name in ("speedup_primes", "latency_primes", "scale"):
            draw(os.path.join(self.dir, "charts", name), "svg")
        draw(os.path.join(self.dir, "charts", "png_only"), "png")
        for name, text in (("REPORT.md", REPORT), ("SCALE.md", SCALE)):
            with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
                f.write(text)
        self.written = webreport.write_pages(os.path.join(self.dir, "REPORT.md"))
        with open(os.path.join(self.dir, "report.html"), encoding="utf-8") as f:
            self.page = f.read()
        self.p = parse(self.page)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_every_heading_in_order(self):
        self.assertEqual(self.p.headings, md_headings(REPORT))
        self.assertIn("<title>poolbench report: test-host</title>", self.page)

    def test_every_table_cell_for_cell(self):
        self.assertEqual(self.p.tables, md_tables(REPORT))
        self.assertEqual(len(self.p.tables), 2)
        self.assertIn(["threads", "4", "634 (623..638) \u2605", "a | b"], self.p.tables[0])
        self.assertIn("<code>a|b</code>", self.page)  # an escaped pipe in a cell's code span

    def test_headings_have_anchors(self):
        h2 = [a.get("id") for t, a, _ in self.p.tags if t == "h2"]
        self.assertEqual(h2, ["verdicts", "workloads", "other-reports-in-this-folder", "charts-not-drawn"])
        nav = re.search(r'<nav class="contents"[^>]*>(.*?)</nav>', self.page).group(1)
        self.assertEqual(re.findall(r'href="#([^"]+)"', nav), h2)  # the contents line, after the first paragraph
        self.assertLess(self.page.index("Every number is a"), self.page.index("<nav"))

    def test_charts_inlined_as_svg(self):
        svgs = [a for t, a, inside in self.p.tags if t == "svg"]
        self.assertEqual([a.get("aria-label") for a in svgs], ["Speedup: primes", "Latency: primes"])
        self.assertNotIn("charts/speedup_primes.png", self.page)
        self.assertEqual(self.page.count("<figure"), 4)  # two SVGs, the PNG, the note of the missing one
        self.assertEqual(self.page.count("<figcaption>"), 3)  # "Gone" has no caption
        self.assertIn("<figcaption><em>Speedup of each executor.</em>", self.page)

    def test_ids_unique_and_references_inside_their_chart(self):
        # matplotlib wrote the same ids in both files: they must not collide
        with open(os.path.join(self.dir, "charts", "speedup_primes.svg")) as f:
            raw = f.read()
        self.assertIn('id="patch_1"', raw)
        dup = sorted({i for i in self.p.ids if self.p.ids.count(i) > 1})
        self.assertEqual(dup, [])
        ids = set(self.p.ids)
        refs = 0
        for tag, attrs, inside in self.p.tags:
            for k, v in attrs.items():
                for ref in re.findall(r"url\(#([^)]+)\)", v or "") + (
                        [v[1:]] if k in ("href", "xlink:href") and (v or "").startswith("#") and inside else []):
                    refs += 1
                    self.assertIn(ref, ids, "%s=%s points to no id" % (k, v))
                    self.assertTrue(ref.startswith(inside + "-"), "%s in %s points outside it" % (ref, inside))
        self.assertGreater(refs, 20)  # glyphs, markers, clip paths

    def test_svg_style_scoped_and_sized(self):
        for m in re.finditer(r"<svg\b[^>]*>", self.page):
            head = m.group(0)
            self.assertNotRegex(head, r'\s(width|height)="')
            self.assertRegex(head, r'viewBox="0 0 288 216"')
            self.assertIn('style="max-width: 384px"', head)  # 288 pt at 96 dpi
        self.assertNotRegex(self.page, r"<style[^>]*>\s*\*\s*\{")

    def test_png_fallback_and_missing_chart(self):
        self.assertRegex(self.page, r'<img class="chart" alt="Only a PNG" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">')
        self.assertIn('[chart Gone: charts/gone.png is missing]', self.page)

    def test_nothing_loaded_from_elsewhere(self):
        for tag, attrs, _ in self.p.tags:
            for k in ("src", "href", "xlink:href"):
                v = attrs.get(k) or ""
                if tag != "a":
                    self.assertFalse(re.match(r"^(https?:)?//", v, flags=re.I), "%s %s=%s" % (tag, k, v))
                if k == "src" and k in attrs:
                    self.assertTrue(v.startswith("data:"), "%s src=%s" % (tag, v[:60]))
            self.assertNotEqual(tag, "link")
            if tag == "script":
                self.assertNotIn("src", attrs)
        self.assertNotRegex(self.page, r"@import|url\((?!#)|<\?xml|<!DOCTYPE svg|<metadata|rdf:resource")

    def test_markdown_links_point_to_their_rendering(self):
        self.assertEqual([os.path.basename(w) for w in self.written], ["report.html", "scale.html"])
        links = [a["href"] for t, a, _ in self.p.tags if t == "a"]
        self.assertIn("scale.html", links)
        self.assertIn("MISSING.md", links)  # no such file: left as written, nothing rendered
        self.assertNotIn("SCALE.md", links)
        with open(os.path.join(self.dir, "scale.html"), encoding="utf-8") as f:
            scale = parse(f.read())
        self.assertEqual(scale.tables, md_tables(SCALE))
        self.assertEqual([a.get("id") for t, a, _ in scale.tags if t == "svg"], ["chart1"])

    def test_sortable_tables_and_error_hook(self):
        self.assertIn("window.onerror", self.page)
        self.assertLess(self.page.index("window.onerror"), self.page.index("<main>"))
        self.assertIn('addEventListener("click"', self.page)
        self.assertEqual(self.page.count('<div class="table-wrap"><table>'), 2)


class Pieces(unittest.TestCase):
    def test_prefix_ids(self):
        svg = ('<svg><defs><path id="m1"/><clipPath id="p2"/></defs><use xlink:href="#m1"/>'
               '<g clip-path="url(#p2)" style="fill: url(#p2)"/><use href="#other"/></svg>')
        out = webreport.prefix_ids(svg, "c7")
        self.assertEqual(out, '<svg><defs><path id="c7-m1"/><clipPath id="c7-p2"/></defs><use xlink:href="#c7-m1"/>'
                              '<g clip-path="url(#c7-p2)" style="fill: url(#c7-p2)"/><use href="#other"/></svg>')

    def test_pt_to_px(self):
        self.assertEqual(webreport.pt_to_px("403.2pt"), 538)
        self.assertEqual(webreport.pt_to_px("300px"), 300)
        self.assertEqual(webreport.pt_to_px("100"), 133)
        self.assertIsNone(webreport.pt_to_px("100%"))
        self.assertIsNone(webreport.pt_to_px(None))

    def test_html_name(self):
        self.assertEqual(webreport.html_name("REPORT.md"), "report.html")
        self.assertEqual(webreport.html_name("TRANSPORT.md"), "transport.html")

    def test_external_image_never_fetched(self):
        body = '<p><img alt="logo" src="https://example.org/a.png" /> <img alt="d" src="data:image/png;base64,AA==" /></p>'
        out = webreport.inline_images(body, tempfile.gettempdir())
        self.assertEqual(out, '<p>logo <img alt="d" src="data:image/png;base64,AA==" /></p>')

    def test_no_svg_element_is_an_error(self):
        with self.assertRaises(ValueError):
            webreport.inline_svg("<?xml version='1.0'?><html/>", "c1", "x")

    def test_folder_without_report_exits_2(self):
        d = tempfile.mkdtemp(prefix="webreport.")
        try:
            r = subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "scripts", "webreport.py"), d],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("has no REPORT.md", r.stderr)
            self.assertEqual(r.stderr.count("\n"), 1)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
