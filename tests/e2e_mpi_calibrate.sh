#!/bin/sh
# `poolbench calibrate`'s MPI measures (harness/calibrate_mpi.c): with Open
# MPI installed, the four mpi_ measures have numbers (reps, median, the
# bandwidth's bytes) and no rank is left behind; without Open MPI (no mpirun
# on PATH) they are skipped with the reason on stderr and in the JSON while
# the rest is measured; an mpirun that hangs is killed at the deadline
# (POOLBENCH_MPI_TIMEOUT_S) with its group, and the measure is skipped.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"
MPI_ONLY=mpi_rtt_8b_tcp,mpi_rtt_8b_vader,mpi_bw_1mib_tcp,mpi_bw_1mib_vader

measures() { # json-file -> "name skipped median reps bytes" per measure
    python3 -c 'import json, sys
for m in json.load(open(sys.argv[1]))["measures"]:
    print(m["name"], str(m["skipped"]).lower(), m["median"], m["reps"], m["bytes"])' "$1"
}

pingpong=$(dirname "$(readlink -f "$PB")")/mpi_pingpong
if command -v mpirun >/dev/null 2>&1 && [ -x "$pingpong" ]; then
    "$PB" calibrate --quick --reps 3 --only "$MPI_ONLY" --table \
        --json "$tmp/cal.json" 2>"$tmp/err"
    check "calibrate --only mpi_... exits 0" [ $? = 0 ]
    measures "$tmp/cal.json" >"$tmp/m"
    check "four MPI measures in the JSON" [ "$(wc -l <"$tmp/m")" = 4 ]
    check "each measured (not skipped), 3 reps, a positive median" \
        [ "$(awk '$2 == "false" && $3 > 0 && $4 == 3' "$tmp/m" | wc -l)" = 4 ]
    check "the bandwidth measures move 1 MiB per message" \
        [ "$(awk '/^mpi_bw_/ && $5 == 1048576' "$tmp/m" | wc -l)" = 2 ]
    check "the table names the tcp round trip" grep -q '^mpi_rtt_8b_tcp ' "$tmp/err"
    check "no mpi_pingpong rank left behind" [ -z "$(pgrep -f "$pingpong" || true)" ]
    sed 's/^/     /' "$tmp/m"
else
    echo "skip the measured part: Open MPI or $pingpong missing (make deps; make)"
fi

# No Open MPI: no mpirun on PATH.  The rest is measured.
mkdir "$tmp/nompi"
PATH="$tmp/nompi" "$PB" calibrate --quick --reps 2 --only "pipe_syscall_pair,$MPI_ONLY" \
    --json "$tmp/none.json" 2>"$tmp/err"
check "without Open MPI calibrate still exits 0" [ $? = 0 ]
check "and says why on stderr" grep -q \
    "MPI round trip: skipped: Open MPI not installed (libopenmpi-dev, openmpi-bin)" "$tmp/err"
measures "$tmp/none.json" >"$tmp/m"
check "the MPI measures are skipped in the JSON" \
    [ "$(grep -c '^mpi_.* true None 0 ' "$tmp/m")" = 4 ]
check "the rest is measured" grep -q '^pipe_syscall_pair false [0-9]' "$tmp/m"

# An mpirun that hangs: killed with everything it started at the deadline.
mkdir "$tmp/hang"
cat >"$tmp/hang/mpirun" <<EOS
#!/bin/sh
sleep 300 &
echo \$! >"$tmp/child.pid"
sleep 300
EOS
chmod +x "$tmp/hang/mpirun"
t0=$(date +%s)
PATH="$tmp/hang:$PATH" POOLBENCH_MPI_PINGPONG=/bin/true POOLBENCH_MPI_TIMEOUT_S=1 \
    "$PB" calibrate --reps 1 --only mpi_rtt_8b_tcp --json "$tmp/hang.json" 2>"$tmp/err"
rc=$?
t1=$(date +%s)
check "a hanging mpirun: calibrate exits 0 (measure skipped)" [ "$rc" = 0 ]
check "within the deadline and the grace period (<= 20 s, took $((t1 - t0)) s)" \
    [ $((t1 - t0)) -le 20 ]
check "the note says it was killed" grep -q "took over 1 s and was killed" "$tmp/err"
gone() { ! kill -0 "$(cat "$tmp/child.pid")" 2>/dev/null; }
for _ in 1 2 3 4 5 6 7 8 9 10; do gone && break; sleep 0.5; done
check "the child mpirun started is gone too" gone
exit "$fail"
