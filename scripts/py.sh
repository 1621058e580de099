#!/bin/sh
# Runs a poolbench Python script with an interpreter that can import what
# the script needs: the modules on its "# needs:" line (matplotlib when it
# has none, or for -c), tried in $POOLBENCH_PYTHON, then Debian's
# /usr/bin/python3 (python3-matplotlib, python3-scipy), then whatever
# python3 is on the PATH (often a pyenv build without them, hence not first).
#   scripts/py.sh scripts/plot.py RESULTS_DIR
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ beside the scripts
needs=matplotlib
if [ -f "${1:-}" ]; then
    line=$(sed -n '1,30s/^# needs: *//p' "$1" | head -n 1)
    [ -n "$line" ] && needs=$line
fi
imports=$(echo "$needs" | sed 's/  */, /g')
for py in ${POOLBENCH_PYTHON:-} /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c "import $imports" >/dev/null 2>&1; then
        exec "$py" "$@"
    fi
done
pkgs=$(for m in $needs; do printf ' python3-%s' "$m"; done)
echo "poolbench: no python3 that imports $imports found (apt-get install$pkgs)" >&2
exit 1
