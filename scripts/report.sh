#!/bin/sh
# make report RESULTS=DIR: redraw the charts of an existing results folder
# (scripts/plot.py -> DIR/charts/, scripts/plot_transport.py when the
# folder has transport.jsonl), rewrite its REPORT.md
# (scripts/report.py) and render that text as DIR/report.html
# (scripts/webreport.py: the same report, charts inlined), then print the
# two paths, REPORT.md's first. Exit 2 when DIR is missing or is not a
# results folder (no runs.csv); exit 1 when no python3 with matplotlib (or,
# for report.html, markdown) is found or a script fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-}
if [ -z "$dir" ]; then
    echo "poolbench: RESULTS is empty: make report RESULTS=results/<host>-<time>" >&2
    exit 2
fi
if [ ! -d "$dir" ]; then
    echo "poolbench: RESULTS=$dir: no such folder" >&2
    exit 2
fi
if [ ! -f "$dir/runs.csv" ]; then
    echo "poolbench: RESULTS=$dir is not a results folder (no runs.csv)" >&2
    exit 2
fi
"$here/py.sh" "$here/plot.py" "$dir" >/dev/null || exit 1
if [ -f "$dir/transport.jsonl" ]; then  # TRANSPORT.md, which REPORT.md links to
    "$here/py.sh" "$here/plot_transport.py" "$dir" >/dev/null || exit 1
fi
rm -f "$dir/report.html"  # never left behind, older than a new REPORT.md
report=$("$here/py.sh" "$here/report.py" "$dir") || exit 1
echo "$report"
html=$("$here/py.sh" "$here/webreport.py" "$dir") || {
    echo "poolbench: report.html not written (REPORT.md is): see the line above" >&2
    exit 1
}
echo "$html"
