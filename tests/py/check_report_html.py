# needs: matplotlib
"""check_report_html.py: what tests/e2e_html.sh asserts about report.html
as headless Chromium rendered it.

    check_report_html.py [--png SHOT.png --min-height H] --dom DOM.html --report REPORT.md [--min-charts N]

The screenshot: a PNG (signature, IHDR) of width 1280 and at least H
pixels high, of some size in bytes, not blank (many distinct colours, a
share of non-white pixels).  The DOM dumped after the page's script ran with
#pb-selftest: no JavaScript error recorded (data-js-errors), the page's
script finished (data-pb-ready), every "## " heading of REPORT.md an <h2>,
every chart of REPORT.md whose SVG exists an inline <svg class="chart">,
every table of REPORT.md sortable and sorted by its second column,
descending, by the rule of the page's script (numbers first, scaled by a
size suffix; text; blanks last), and at least one table in an order other
than REPORT.md's (the sort moved rows).  Prints "ok ..." or "FAIL ..." per
check; exits 1 when one failed.
"""
import argparse
import html.parser
import os
import re
import struct
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import numpy  # noqa: E402

failed = []


def check(desc, ok):
    print(("ok   " if ok else "FAIL ") + desc)
    if not ok:
        failed.append(desc)


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root, self.h2, self.svgs, self.tables = {}, [], [], []
        self.text = self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.root = a
        elif tag == "h2":
            self.text = ""
        elif tag == "svg":
            self.svgs.append(a)
        elif tag == "table":
            self.tables.append({"cls": a.get("class", ""), "sort": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self.cell = ""
            if tag == "th":
                self.tables[-1]["sort"].append(a.get("aria-sort"))

    def handle_endtag(self, tag):
        if tag == "h2" and self.text is not None:
            self.h2.append(" ".join(self.text.split()))
            self.text = None
        elif tag in ("td", "th") and self.cell is not None:
            self.tables[-1]["rows"][-1].append(" ".join(self.cell.split()))
            self.cell = None

    def handle_data(self, data):
        if self.text is not None:
            self.text += data
        if self.cell is not None:
            self.cell += data


SCALE = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
         "KiB": 1024, "MiB": 1048576, "GiB": 1073741824, "B": 1}


def sort_key(text):
    """(class, number): 0 a number (scaled by its size suffix), 1 text,
    2 blank; the rule the page's script states."""
    s = re.sub("[\u2605\u2020\u2717]", "", text).strip()
    if s in ("", "\u2013", "-", "unknown"):
        return (2, 0.0)
    m = re.match(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", s)
    if not m:
        return (1, 0.0)
    unit = re.match(r"\s*(KiB|MiB|GiB|kB|KB|MB|GB|B|k|K|M|G)(?![A-Za-z])", s[m.end():])
    return (0, float(m.group(0)) * (SCALE[unit.group(1)] if unit else 1))


def sorted_descending(cells):
    keys = [sort_key(c) for c in cells]
    classes = [k[0] for k in keys]
    nums = [k[1] for k in keys if k[0] == 0]
    return classes == sorted(classes) and nums == sorted(nums, reverse=True)


def md_tables(text):
    tables, cur = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            cur = None
            continue
        if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line):
            continue
        row = [" ".join(re.sub(r"[*`]", "", c).replace("\\|", "|").split())
               for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        if cur is None:
            cur = []
            tables.append(cur)
        cur.append(row)
    return tables


def check_png(path, min_height):
    with open(path, "rb") as f:
        data = f.read()
    check("the screenshot is a PNG", data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    check("the screenshot is 1280 px wide and at least %d high (%dx%d)" % (min_height, width, height),
          width == 1280 and height >= min_height)
    check("the screenshot has some size (%d bytes)" % len(data), len(data) > 30000)
    px = matplotlib.image.imread(path)[:, :, :3]
    colours = len(numpy.unique((px * 255).astype(numpy.uint8).reshape(-1, 3), axis=0))
    inked = float(numpy.mean(px.min(axis=2) < 0.9))
    check("the screenshot is not blank (%d colours, %.1f%% of the pixels not white)" % (colours, 100 * inked),
          colours >= 64 and inked > 0.02)


def check_tables(dom, md):
    want = md_tables(md)
    check("as many tables as the Markdown (%d, %d)" % (len(dom.tables), len(want)), len(dom.tables) == len(want))
    moved = 0
    for i, (t, w) in enumerate(zip(dom.tables, want)):
        body = t["rows"][1:]
        check("table %d sortable, the same %d rows" % (i + 1, len(w) - 1),
              "sortable" in t["cls"] and sorted(map(tuple, body)) == sorted(map(tuple, w[1:])))
        if len(w[0]) < 2:
            continue
        col = [r[1] if len(r) > 1 else "" for r in body]
        check("table %d sorted by '%s', descending" % (i + 1, t["rows"][0][1]),
              t["sort"][1] == "descending" and sorted_descending(col))
        moved += body != w[1:]
    check("the sort moved the rows of %d tables" % moved, moved > 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--png")
    ap.add_argument("--dom", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--min-height", type=int, default=1000)
    ap.add_argument("--min-charts", type=int, default=1)
    args = ap.parse_args()
    if args.png:
        check_png(args.png, args.min_height)
    with open(args.report, encoding="utf-8") as f:
        md = f.read()
    dom = Dom()
    with open(args.dom, encoding="utf-8") as f:
        dom.feed(f.read())
    check("no JavaScript error recorded (%s)" % dom.root.get("data-js-errors"), "data-js-errors" not in dom.root)
    check("the page's script finished (data-pb-ready)", dom.root.get("data-pb-ready") == "1")
    want = [re.sub(r"[*`]", "", h).strip() for h in re.findall(r"^## (.+)$", md, flags=re.M)]
    missing = [h for h in want if h not in dom.h2]
    check("every ## heading of the Markdown is an <h2> (%d; missing: %s)" % (len(want), missing),
          want and not missing and len(dom.h2) == len(want))
    base = os.path.dirname(os.path.abspath(args.report))
    charts = [p for p in re.findall(r"!\[[^\]]*\]\(([^)]+)\.png\)", md) if os.path.isfile(os.path.join(base, p + ".svg"))]
    inline = [s for s in dom.svgs if "chart" in (s.get("class") or "")]
    check("every chart of the Markdown is an inline <svg> (%d, %d)" % (len(inline), len(charts)),
          len(charts) >= args.min_charts and len(inline) == len(charts))
    check_tables(dom, md)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
