#!/bin/sh
# End to end: `poolbench run -e mpi` (issue 16) computes what the thread
# pool computes (the same digest on primes), runs the empty task, records
# its Open MPI transport (--mpi-btl tcp / sm: transport mpi-tcp / mpi-sm
# in the JSON), leaves no process behind, and refuses a bad --mpi-btl with
# one line and exit 2; a sweep's config_id names the transport, and
# REPORT.md's MPI section shows runs.csv's mpi rows (make bench's mpi/).  Without Open MPI, `list` and `run -e mpi` say it is
# unavailable (exit 2, one line).  Skipped (exit 77, counted as skipped)
# in a sanitizer build: Open MPI's own leaks and threads would fail the
# broker and workers there.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"
mpi_as_root

bad "unknown --mpi-btl 'udp' (accepted: tcp, sm)" run -W noop -e mpi --mpi-btl udp
bad "--mpi-btl needs --executor mpi" run -W noop -e threads --mpi-btl tcp

if ! "$PB" list | grep -q '^mpi executor (-e mpi): available'; then
    # Only a build made without it (make HAVE_MPI=0: build*/nompi/) may lack
    # it where pkg-config finds Open MPI.
    case $PB in
    */nompi/*) ;;
    *) check "the mpi executor is built where pkg-config finds ompi-c" \
        sh -c '! pkg-config --exists ompi-c' ;;
    esac
    check "list says why the mpi executor is unavailable" \
        sh -c '"$1" list | grep -q "^mpi executor (-e mpi): unavailable: built without Open MPI"' _ "$PB"
    bad "the mpi executor is unavailable: built without Open MPI" run -W noop -e mpi
    bad "the mpi executor is unavailable: built without Open MPI" overhead -e mpi
    exit "$fail"
fi
case $("$PB" --version) in
*"build: optimized)"*) ;;
*)
    echo "skipped: a sanitizer build ($("$PB" --version)): Open MPI's processes would fail under it"
    exit 77
    ;;
esac

"$PB" run -W primes -e threads -w 2 -n 200 --json >"$tmp/threads.json"
check "primes on threads: exit 0" [ $? = 0 ]
"$PB" run -W primes -e mpi -w 2 -n 200 --json >"$tmp/mpi.json" 2>"$tmp/mpi.err"
check "primes on mpi: exit 0" [ $? = 0 ]
cat "$tmp/mpi.err"
check "primes: mpi's digest is threads' ($(field "$tmp/mpi.json" digest))" \
    [ "$(field "$tmp/mpi.json" digest)" = "$(field "$tmp/threads.json" digest)" ]
check "primes on mpi: 200 tasks ok" [ "$(field "$tmp/mpi.json" tasks_ok)" = 200 ]
for btl in tcp sm; do
    "$PB" run -W noop -e mpi --mpi-btl "$btl" -w 2 -n 500 --json >"$tmp/noop.$btl.json" \
        2>"$tmp/noop.$btl.err"
    check "noop on mpi --mpi-btl $btl: exit 0" [ $? = 0 ]
    cat "$tmp/noop.$btl.err"
    check "noop on mpi --mpi-btl $btl: transport mpi-$btl" \
        [ "$(field "$tmp/noop.$btl.json" transport)" = "mpi-$btl" ]
    check "noop on mpi --mpi-btl $btl: 500 tasks ok" [ "$(field "$tmp/noop.$btl.json" tasks_ok)" = 500 ]
done
OMPI_MCA_btl=tcp,self "$PB" run -W noop -e mpi -w 2 -n 50 --json >"$tmp/env.json" 2>/dev/null
check "without --mpi-btl the transport follows OMPI_MCA_btl=tcp,self: mpi-tcp" \
    [ "$(field "$tmp/env.json" transport)" = mpi-tcp ]

# overhead's empty task is registered: -e mpi measures it.
"$PB" overhead --json -e mpi -w 2 -n 300 -c 16 >"$tmp/overhead.json" 2>"$tmp/overhead.err"
check "overhead -e mpi: exit 0" [ $? = 0 ]
check "  one row, executor mpi, 2 workers ($(field "$tmp/overhead.json" throughput_ns_per_task) ns/task)" \
    [ "$(field "$tmp/overhead.json" executor) $(field "$tmp/overhead.json" workers)" = "mpi 2" ]
bad "unknown executor 'gpu' in --executors (accepted: seq, threads, procs, mpi)" overhead -e gpu

# The table workload's tasks read a table built in this process's memory:
# refused on mpi (its workers are other programs), by run and by sweep.
bad "workload 'table' reads state prepared in this process's memory" run -W table -e mpi -w 2 -n 4
bad "or procs) (drop mpi from --executors)" \
    sweep --out "$tmp/table" -W table -e threads,mpi -w 2 -n 4 -q
# Crashing tasks are isolated on mpi: sweep accepts them and counts them.
"$PB" sweep --out "$tmp/fault" -W fault -p crash_rate=0.3 -p latency_ms=0 -e mpi -w 2 -n 20 \
    --reps 1 --warmup 0 --min-time 0 -q 2>"$tmp/fault.err"
check "sweep -e mpi with crashing tasks: exit 0" [ $? = 0 ]
tail -n 1 "$tmp/fault/runs.jsonl" >"$tmp/fault.json"
failed=$(field "$tmp/fault.json" tasks_failed)
check "  and counts the failed tasks ($failed of 20)" [ "${failed:-0}" -gt 0 ]
check "  as EX_EBROKEN ($(field "$tmp/fault.json" errors))" \
    grep -q EX_EBROKEN "$tmp/fault.json"

# make bench's mpi/ sweep in small: the config_id tells tcp from sm, and
# REPORT.md's MPI section shows one poolbench mpi row per transport whose
# numbers are runs.csv's, recomputed here (the empty task's wall per task,
# primes' speedup: median [min..max]), naming its config_ids.
r="$tmp/res"
mkdir "$r"
for btl in tcp,self vader,tcp,self; do
    for wl in "noop -n 200" "primes -n 8 -p span=100000"; do
        # shellcheck disable=SC2086
        OMPI_MCA_btl=$btl "$PB" sweep --out "$r/mpi" -e mpi -w 2 -W $wl --reps 2 --warmup 0 \
            --min-time 0 -q \
            2>"$tmp/sweep.err" || { cat "$tmp/sweep.err"; echo "FAIL sweep -e mpi ($btl, $wl)"; fail=1; }
    done
done
ids=$(cut -d, -f4 "$r/mpi/runs.csv" | grep '|mpi|' | sort -u | tr '\n' ' ')
check "config_ids name the transport ($ids)" [ "$ids" = "noop|payload_bytes=64|mpi|2|none|mpi-sm \
noop|payload_bytes=64|mpi|2|none|mpi-tcp " ]
check "  (primes too, quoted in runs.csv)" [ "$(grep -c 'start=0|mpi|2|none|mpi-' "$r/mpi/summary.csv")" = 2 ]
"$PB" sweep --out "$r" -W primes -e seq,threads -w 2 --reps 1 --warmup 0 -n 8 -p span=100000 -q \
    2>"$tmp/err" || { cat "$tmp/err"; echo "FAIL poolbench sweep"; fail=1; }
"$here/../scripts/py.sh" "$here/../scripts/report.py" "$r" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err"; echo "FAIL report.py"; fail=1; }
for tr in tcp sm; do
    want=$("$here/../scripts/py.sh" - "$r/mpi/runs.csv" "mpi-$tr" "$here/../scripts" <<'EOF'
import csv, statistics, sys
sys.path.insert(0, sys.argv[3])
from pbresults import fmt
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["transport"] == sys.argv[2]]
def rng(vals, unit, scale=1):
    lo, hi = min(vals), max(vals)
    return (fmt(statistics.median(vals) / scale) + unit +
            (" [%s..%s]" % (fmt(lo / scale), fmt(hi / scale)) if hi > lo else ""))
noop = [float(r["wall_s"]) / int(r["tasks"]) * 1e9 for r in rows if r["workload"] == "noop"]
sp = [float(r["speedup"]) for r in rows if r["workload"] == "primes"]
btl = {"mpi-tcp": "tcp,self", "mpi-sm": "vader,tcp,self (workers: TCP)"}[sys.argv[2]]
print("| poolbench mpi | spawn | %s | 2 | %s | \u2013 | %s | equal to seq's |"
      % (btl, rng(noop, " \u00b5s", 1e3), rng(sp, "x")))
EOF
)
    check "REPORT.md's mpi-$tr row is runs.csv's: $want" \
        sh -c '[ -n "$1" ] && grep -qxF "$1" "$2"' _ "$want" "$r/REPORT.md"
    check "  and names its config_ids" grep -qF "\`noop|payload_bytes=64|mpi|2|none|mpi-$tr\` (2 runs)" \
        "$r/REPORT.md"
done
"$PB" run -W noop -e mpi -w 2 -n 50 >"$tmp/summary" 2>&1
check "the summary names the mpi executor" grep -q '^executor    mpi, 2 workers' "$tmp/summary"
# The broker (argv[0] poolbench-mpi-broker) reaps orted and the workers
# (argv[1] --poolbench-mpi-worker=...) before it exits: none is left.
left=$(pgrep -f -- 'poolbench-mpi-broker|--poolbench-mpi-worker=' | wc -l)
check "no broker or MPI worker of poolbench left ($left)" [ "$left" = 0 ]
exit "$fail"
