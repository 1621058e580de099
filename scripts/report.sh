#!/bin/sh
# make report RESULTS=DIR: redraw the charts of an existing results folder
# (scripts/plot.py -> DIR/charts/) and rewrite its REPORT.md
# (scripts/report.py), then print the report's path. Exit 2 when DIR is
# missing or is not a results folder (no runs.csv); exit 1 when no python3
# with matplotlib is found or a script fails.
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
report=$("$here/py.sh" "$here/report.py" "$dir") || exit 1
echo "$report"
