#!/bin/sh
# Runs a poolbench Python script with an interpreter that can import
# matplotlib: $POOLBENCH_PYTHON if set, then Debian's /usr/bin/python3
# (python3-matplotlib), then whatever python3 is on the PATH (often a pyenv
# build without matplotlib, hence not first).
#   scripts/py.sh scripts/plot.py RESULTS_DIR
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ beside the scripts
for py in ${POOLBENCH_PYTHON:-} /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import matplotlib' >/dev/null 2>&1; then
        exec "$py" "$@"
    fi
done
echo "poolbench: no python3 with matplotlib found (apt-get install python3-matplotlib)" >&2
exit 1
