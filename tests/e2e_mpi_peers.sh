#!/bin/sh
# The MPI peer (scripts/peers/mpi_futures.py, run by `make peers` and make
# bench): with Open MPI and mpi4py, MPIPoolExecutor spawned (btl tcp) and
# under mpiexec (btl vader) gives an empty row and a primes row with every
# task counted and the sequential digest; spawned + vader fails with the
# reason, in bounded time; no process of theirs is left behind.  Without
# mpiexec: skipped with the reason, exit 0.  Bad usage: exit 2.  Then
# REPORT.md's MPI section shows the rows beside poolbench's and
# calibrate's MPI limit.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
script="$here/../scripts/peers/mpi_futures.py"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"
py=/usr/bin/python3
small="--tasks 20 --primes-tasks 4 --span 100000 --reps 1 --timeout-s 120"

ours() { # processes of an mpi4py job or its orted started from this test's folder
    for p in $(pgrep -f 'orted|mpi4py|mpi_futures' || true); do
        { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -q "^POOLBENCH_MPI_PEER=$1-" && echo "$p"
    done
}

if command -v mpiexec >/dev/null 2>&1 && "$py" -c 'import mpi4py.futures' 2>/dev/null; then
    # shellcheck disable=SC2086
    "$py" "$script" $small --start spawn,mpiexec --btl tcp >"$tmp/tcp.jsonl" 2>"$tmp/err" &
    pid=$!
    wait "$pid"
    check "mpi_futures.py exits 0" [ $? = 0 ]
    rows() { # start workload -> how many rows with every task completed
        python3 -c 'import json, sys
n = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("start") == sys.argv[2] and o.get("workload") == sys.argv[3] \
       and o["completed"] == o["tasks"] and o["btl"] == "tcp,self":
        n += 1
print(n)' "$tmp/tcp.jsonl" "$1" "$2"
    }
    for start in spawn mpiexec; do
        check "$start tcp: an empty row, every task counted" [ "$(rows "$start" empty)" = 1 ]
        check "$start tcp: a primes row, every task counted" [ "$(rows "$start" primes)" = 1 ]
    done
    check "the primes digests equal the sequential run's" \
        [ "$(grep -c '"digest_matches_seq": true' "$tmp/tcp.jsonl")" = 2 ]
    check "no process of the runs left behind" [ -z "$(ours "$pid")" ]
    # shellcheck disable=SC2086
    "$py" "$script" $small --start spawn --btl vader >"$tmp/vader.jsonl" 2>"$tmp/err" &
    pid=$!
    wait "$pid"
    check "spawned + vader: a row with the reason" grep -q '"error": "exit status' "$tmp/vader.jsonl"
    check "and a line on stderr" grep -q "spawn btl vader,self failed" "$tmp/err"
    check "no process of that run left behind" [ -z "$(ours "$pid")" ]
    cat "$tmp/tcp.jsonl" "$tmp/vader.jsonl" >"$tmp/peers_mpi.jsonl"
else
    echo "skip the measured part: Open MPI (mpiexec) or python3-mpi4py missing (make deps)"
    printf '%s\n' '{"peer": "mpi4py MPIPoolExecutor", "start": "spawn", "btl": "vader,self", "workers": 2, "error": "canned"}' \
        >"$tmp/peers_mpi.jsonl"
fi

mkdir "$tmp/nompi"
# shellcheck disable=SC2086
PATH="$tmp/nompi" "$py" "$script" $small >"$tmp/out" 2>"$tmp/err"
check "without mpiexec: exit 0" [ $? = 0 ]
check "nothing on stdout" [ ! -s "$tmp/out" ]
check "the reason on stderr" grep -q "MPIPoolExecutor skipped: Open MPI not installed" "$tmp/err"
"$py" "$script" --btl ib >/dev/null 2>"$tmp/err"
check "--btl ib: exit 2 naming the accepted values" [ $? = 2 ]
check "  (message)" grep -q "accepted: tcp, vader" "$tmp/err"

# REPORT.md: the MPI section beside poolbench's rows.
r="$tmp/res"
"$PB" sweep --out "$r" -W primes -e seq,threads -w 2 --reps 1 --warmup 0 -n 8 -p span=100000 -q \
    2>"$tmp/err" || { cat "$tmp/err"; echo "FAIL poolbench sweep"; exit 1; }
"$PB" overhead --json -w 2 -n 500 >"$r/overhead.jsonl" 2>/dev/null
PATH="$tmp/nompi" "$PB" calibrate --quick --reps 1 --only pipe_syscall_pair,mpi_rtt_8b_tcp \
    --json "$r/calibrate.json" 2>/dev/null
cp "$tmp/peers_mpi.jsonl" "$r/"
"$here/../scripts/py.sh" "$here/../scripts/report.py" "$r" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err"; echo "FAIL report.py"; fail=1; }
check "REPORT.md has the MPI section" grep -q "^## MPI: mpi4py.futures beside poolbench" "$r/REPORT.md"
check "with poolbench's threads row" grep -q "^| poolbench threads |" "$r/REPORT.md"
check "with the MPIPoolExecutor rows" grep -q "^| mpi4py MPIPoolExecutor | spawn |" "$r/REPORT.md"
check "and calibrate's MPI limit (skipped here: no mpirun on PATH)" \
    grep -q "mpi_rtt_8b_tcp\` skipped: Open MPI not installed" "$r/REPORT.md"
exit "$fail"
