#!/bin/sh
# End to end: a sweep killed with SIGKILL midway leaves valid runs.csv and
# runs.jsonl (every finished row whole, no torn line) and no process behind;
# every bad option of sweep, calibrate, advise and topo exits 2 with one
# line naming it.
set -u
PB=${POOLBENCH:-./poolbench}
root=$(cd "$(dirname "$0")/.." && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. "$(dirname "$0")/lib_e2e.sh"


# -- SIGKILL midway ------------------------------------------------------
"$PB" sweep --out "$tmp/k" -W sleep,http -e seq,threads,procs -w 1,2,4 -p latency_ms=2 \
    --reps 50 --warmup 0 -n 8 -q 2>"$tmp/k.err" &
pid=$!
i=0
while [ "$i" -lt 300 ]; do
    n=$({ wc -l <"$tmp/k/runs.csv"; } 2>/dev/null || echo 0)
    [ "$n" -ge 6 ] && break
    sleep 0.1
    i=$((i + 1))
done
# The sweep's children now: the HTTP server and the run in progress.
kids=""
for p in /proc/[0-9]*; do
    [ "$(sed -n 's/^PPid:\s*//p' "$p/status" 2>/dev/null)" = "$pid" ] && kids="$kids ${p#/proc/}"
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
rows=$(($(wc -l <"$tmp/k/runs.csv") - 1))
check "killed sweep kept rows ($rows)" [ "$rows" -ge 5 ]
# Every line is whole: the same number of CSV fields as the header, and the
# file ends with a newline; every JSONL line is a JSON object.
check "runs.csv: every row has the header's field count" awk -F, '
    function count(line,   n, q, i, c) { n = 1; q = 0
        for (i = 1; i <= length(line); i++) { c = substr(line, i, 1)
            if (c == "\"") q = !q; else if (c == "," && !q) n++ }
        return n }
    NR == 1 { want = count($0); next }
    count($0) != want { bad = 1 }
    END { exit bad }' "$tmp/k/runs.csv"
check "runs.csv ends with a newline" [ "$(tail -c 1 "$tmp/k/runs.csv" | od -An -c | tr -d ' ')" = '\n' ]
check "runs.jsonl: every line is one object" awk '!/^\{.*\}$/ { bad = 1 } END { exit bad }' "$tmp/k/runs.jsonl"
jl=$(wc -l <"$tmp/k/runs.jsonl")
check "runs.jsonl has the rows of runs.csv ($jl vs $rows)" [ "$jl" -ge "$rows" ]
# Nothing of the sweep is left running: the server goes with its parent
# (PR_SET_PDEATHSIG), the orphaned run ends or dies writing its result.
alive() { # pid: running (a zombie counts as gone)
    st=$(sed -n 's/^State:\s*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ]
}
left=""
i=0
while [ "$i" -lt 100 ]; do
    left=""
    for k in $kids; do alive "$k" && left="$left $k"; done
    [ -z "$left" ] && break
    sleep 0.1
    i=$((i + 1))
done
check "the killed sweep's children ($kids ) are gone (left:${left:- none})" [ -z "$left" ]
for k in $left; do kill -9 "$k" 2>/dev/null; done

# -- the same folder can be resumed (appended) ----------------------------
"$PB" sweep --out "$tmp/k" -W sleep -e seq -w 1 -p latency_ms=1 --reps 1 --warmup 0 -n 2 -q
check "a later sweep appends to the same runs.csv" [ "$(($(wc -l <"$tmp/k/runs.csv") - 1))" -gt "$rows" ]

# -- crashing work on procs alone: no seq baseline, the sweep succeeds ------
"$PB" sweep --out "$tmp/f" -W fault -e procs -w 2 -p crash_rate=0.2 -p latency_ms=0 \
    --reps 2 --warmup 0 -n 20 -q 2>"$tmp/f.err"
rc=$?
check "fault crash_rate=0.2 on procs only: sweep exits 0 ($rc)" [ "$rc" = 0 ]
check "fault on procs: 2 rows" [ "$(grep -c ',procs,2,' "$tmp/f/runs.csv")" = 2 ]
check "fault on procs: no seq baseline" [ "$(grep -c ',seq,' "$tmp/f/runs.csv")" = 0 ]
check "fault on procs: dead workers counted in the rows" grep -q 'EX_EWORKER=' "$tmp/f/runs.csv"
# A column by name from runs.csv (python: params contain quoted commas).
col() { # file column -> one value per row
    "$root/scripts/py.sh" -c 'import csv,sys
for r in csv.DictReader(open(sys.argv[1])): print(r[sys.argv[2]])' "$1" "$2"
}
check "fault on procs: no speedup without a baseline" [ -z "$(col "$tmp/f/runs.csv" speedup | tr -d '\n')" ]

# -- --no-baseline: the pools' rows alone, no speedup, no digest check ------
"$PB" sweep --out "$tmp/nb" -W sleep -e seq,threads -w 4 -p latency_ms=1 --no-baseline \
    --reps 2 --warmup 0 -n 8 -q
check "--no-baseline: 2 rows, all threads" [ "$(col "$tmp/nb/runs.csv" executor | sort -u | tr '\n' ' ')" = "threads " ]
check "--no-baseline: no speedup" [ -z "$(col "$tmp/nb/runs.csv" speedup | tr -d '\n')" ]
check "--no-baseline: no digest check" [ -z "$(col "$tmp/nb/runs.csv" digest_ok | tr -d '\n')" ]

# -- bad options: exit 2 and one line ---------------------------------------
bad "--out" sweep -W primes
bad "unknown executor 'x'" sweep --out "$tmp/b" -e x
bad "--workers" sweep --out "$tmp/b" -w 0
bad "--workers" sweep --out "$tmp/b" -w 8-2
bad "unknown workload 'nope'" sweep --out "$tmp/b" -W nope
bad "pin policy" sweep --out "$tmp/b" --pin sideways
bad "--reps" sweep --out "$tmp/b" --reps 0
bad "belongs to none" sweep --out "$tmp/b" -W primes -p latency_ms=3
bad "--vary" sweep --out "$tmp/b" --vary payload_bytes
bad "procs" sweep --out "$tmp/b" -W fault -p crash_rate=0.5
bad "--timeout-ms" sweep --out "$tmp/b" -W fault -e procs -p hang_rate=0.5
bad "CPU" sweep --out "$tmp/b" --cpus 999
bad "unknown option" sweep --out "$tmp/b" --frobnicate
bad "--reps" calibrate --reps 0
bad "--json" calibrate --json
bad "unknown" calibrate --bogus
bad "--workload is required" advise
bad "unknown workload" advise -W nope
bad "--utilization" advise -W sleep -U 2
bad "crash" advise -W fault -p crash_rate=0.2
bad "--workers" topo --workers 0
bad "unknown" topo --bogus
bad "--tasks" overhead -n 5
[ -e "$tmp/b/runs.csv" ] && { echo "FAIL a refused sweep wrote rows"; fail=1; }
exit $fail
