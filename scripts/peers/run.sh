#!/bin/sh
# The executors we measure ourselves against, on this machine, beside
# `poolbench overhead`: GLib's GThreadPool (built here if libglib2.0-dev
# is installed), Python's ThreadPoolExecutor / ProcessPoolExecutor, and
# mpi4py.futures' MPIPoolExecutor over Open MPI (mpi_futures.py: empty and
# primes tasks, btl tcp and vader; skipped with the reason without mpi4py).
#   scripts/peers/run.sh [TASKS] [WORKERS]      (default 100000 2)
# One JSON object per line on stdout: poolbench's rows (with its mpi
# executor's, beside MPIPoolExecutor's, when it is built in), then the
# peers'.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
tasks=${1:-100000}
workers=${2:-2}
PB=${POOLBENCH:-$here/build/poolbench}
[ -x "$PB" ] || { echo "peers: $PB is missing: run make first" >&2; exit 1; }
"$PB" overhead --json --no-cpu-stats -w "$workers" -n "$tasks" || exit 1
if pkg-config --exists glib-2.0 2>/dev/null; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT INT TERM
    # shellcheck disable=SC2046
    if cc -O2 -o "$out/glib_pool" "$here/scripts/peers/glib_pool.c" \
        $(pkg-config --cflags --libs glib-2.0); then
        "$out/glib_pool" "$tasks" "$workers"
    fi
else
    echo "peers: GLib skipped: libglib2.0-dev is not installed (apt-get install libglib2.0-dev)" >&2
fi
py=$(command -v python3 || true)
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
if [ -n "$py" ]; then
    "$py" "$here/scripts/peers/py_executors.py" --workers "$workers" --tasks $((tasks / 5))
    mpi_tasks=$((tasks / 50))
    [ "$mpi_tasks" -ge 1 ] || mpi_tasks=1
    if "$PB" list | grep -q '^mpi executor (-e mpi): available'; then
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
            "$PB" overhead --json -e mpi -w "$workers" -n "$mpi_tasks"
    fi
    "$py" "$here/scripts/peers/mpi_futures.py" --workers "$workers" --tasks "$mpi_tasks"
else
    echo "peers: Python skipped: no python3" >&2
fi
