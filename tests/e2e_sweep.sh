#!/bin/sh
# End to end: a sweep killed with SIGKILL midway leaves valid runs.csv and
# runs.jsonl (every finished row whole, no torn line) and no process behind;
# repetitions are interleaved in an order the seed fixes (or grouped); runs
# follow the run-length rule and record the machine's noise and the build;
# every bad option of sweep, calibrate, advise, topo and noise exits 2 with
# one line naming it.
set -u
PB=${POOLBENCH:-./poolbench}
root=$(cd "$(dirname "$0")/.." && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. "$(dirname "$0")/lib_e2e.sh"


# -- SIGKILL midway ------------------------------------------------------
"$PB" sweep --out "$tmp/k" -W sleep,http -e seq,threads,procs -w 1,2,4 -p latency_ms=2 \
    --reps 50 --warmup 0 --min-time 0 -n 8 -q 2>"$tmp/k.err" &
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
# file ends with a newline; every JSONL line is a JSON object (read as
# JSON, not matched as text) with the CSV's columns.
check "runs.csv: every row has the header's field count" awk -F, '
    function count(line,   n, q, i, c) { n = 1; q = 0
        for (i = 1; i <= length(line); i++) { c = substr(line, i, 1)
            if (c == "\"") q = !q; else if (c == "," && !q) n++ }
        return n }
    NR == 1 { want = count($0); next }
    count($0) != want { bad = 1 }
    END { exit bad }' "$tmp/k/runs.csv"
check "runs.csv ends with a newline" [ "$(tail -c 1 "$tmp/k/runs.csv" | od -An -c | tr -d ' ')" = '\n' ]
check "runs.jsonl: every line is a JSON object with runs.csv's columns, in order" \
    python3 -c 'import json, sys
header = open(sys.argv[1]).readline().rstrip("\n").split(",")
lines = open(sys.argv[2]).read().split("\n")
assert lines[-1] == "", "no newline at the end"
for line in lines[:-1]:
    row = json.loads(line)
    assert isinstance(row, dict) and list(row) == header, line' "$tmp/k/runs.csv" "$tmp/k/runs.jsonl"
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
"$PB" sweep --out "$tmp/k" -W sleep -e seq -w 1 -p latency_ms=1 --reps 1 --warmup 0 --min-time 0 -n 2 -q
check "a later sweep appends to the same runs.csv" [ "$(($(wc -l <"$tmp/k/runs.csv") - 1))" -gt "$rows" ]

# -- crashing work on procs alone: no seq baseline, the sweep succeeds ------
"$PB" sweep --out "$tmp/f" -W fault -e procs -w 2 -p crash_rate=0.2 -p latency_ms=0 \
    --reps 2 --warmup 0 --min-time 0 -n 20 -q 2>"$tmp/f.err"
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
    --reps 2 --warmup 0 --min-time 0 -n 8 -q
check "--no-baseline: 2 rows, all threads" [ "$(col "$tmp/nb/runs.csv" executor | sort -u | tr '\n' ' ')" = "threads " ]
check "--no-baseline: no speedup" [ -z "$(col "$tmp/nb/runs.csv" speedup | tr -d '\n')" ]
check "--no-baseline: no digest check" [ -z "$(col "$tmp/nb/runs.csv" digest_ok | tr -d '\n')" ]

# -- the run-length rule, the order, the noise columns ----------------------
# A python reader of runs.csv: prints, for each row in the order written,
# the columns asked for, tab-separated.
cols() { # file col... -> rows
    f=$1; shift
    "$root/scripts/py.sh" -c 'import csv,sys
for r in csv.DictReader(open(sys.argv[1])): print("\t".join(r[c] for c in sys.argv[2:]))' "$f" "$@"
}
"$PB" sweep --out "$tmp/o1" -W sleep -e threads,procs -w 1,2,4 -p latency_ms=1 --reps 3 \
    --warmup 0 --min-rounds 3 --min-time 0 -n 2 --order-seed 7 -q
"$PB" sweep --out "$tmp/o2" -W sleep -e threads,procs -w 1,2,4 -p latency_ms=1 --reps 3 \
    --warmup 0 --min-rounds 3 --min-time 0 -n 2 --order-seed 7 -q
"$PB" sweep --out "$tmp/o3" -W sleep -e threads,procs -w 1,2,4 -p latency_ms=1 --reps 3 \
    --warmup 0 --min-rounds 3 --min-time 0 -n 2 --order-seed 8 -q
cols "$tmp/o1/runs.csv" sequence rep executor workers order order_seed >"$tmp/o1.txt"
check "interleaved: 21 rows (7 configurations x 3)" [ "$(wc -l <"$tmp/o1.txt")" = 21 ]
check "interleaved: sequence numbers 1..21 in row order" \
    [ "$(cut -f1 "$tmp/o1.txt" | tr '\n' ' ')" = "$(seq 1 21 | tr '\n' ' ')" ]
check "interleaved: rep 1 of every configuration before any rep 2" \
    [ "$(cut -f2 "$tmp/o1.txt" | tr '\n' ' ')" = "$(printf '1 %.0s' $(seq 7))$(printf '2 %.0s' $(seq 7))$(printf '3 %.0s' $(seq 7))" ]
check "interleaved: the seq baseline opens every round" \
    [ "$(awk -F'\t' 'NR % 7 == 1 { print $3 }' "$tmp/o1.txt" | sort -u)" = seq ]
check "interleaved: order and seed recorded" [ "$(cut -f5,6 "$tmp/o1.txt" | sort -u)" = "$(printf 'interleaved\t7')" ]
cols "$tmp/o2/runs.csv" rep executor workers >"$tmp/o2.txt"
check "the same seed gives the same order" [ "$(cut -f2-4 "$tmp/o1.txt")" = "$(cat "$tmp/o2.txt")" ]
cols "$tmp/o3/runs.csv" rep executor workers >"$tmp/o3.txt"
check "another seed gives another order" [ "$(cut -f2-4 "$tmp/o1.txt")" != "$(cat "$tmp/o3.txt")" ]
r1=$(awk -F'\t' '$2 == 1 { print $3 $4 }' "$tmp/o1.txt" | tr '\n' ' ')
r2=$(awk -F'\t' '$2 == 2 { print $3 $4 }' "$tmp/o1.txt" | tr '\n' ' ')
check "each round is shuffled afresh (round 1: $r1; round 2: $r2)" [ "$r1" != "$r2" ]
"$PB" sweep --out "$tmp/g" -W sleep -e threads -w 1,2 -p latency_ms=1 --reps 3 --warmup 0 \
    --min-rounds 1 --min-time 0 -n 2 --order grouped -q
check "grouped: every configuration's repetitions together" \
    [ "$(cols "$tmp/g/runs.csv" executor workers rep order | tr '\t\n' ', ')" = \
      "seq,1,1,grouped seq,1,2,grouped seq,1,3,grouped threads,1,1,grouped threads,1,2,grouped threads,1,3,grouped threads,2,1,grouped threads,2,2,grouped threads,2,3,grouped " ]
# The rule: tasks >= min_rounds x workers, whole rounds, a warm-up round,
# rule_met consistent with the row, one digest prefix per case.
check "rule: every run has >= 3 rounds and rounds = ceil(tasks / workers)" \
    [ -z "$(cols "$tmp/o1/runs.csv" tasks rounds workers | awk -F'\t' '$2 < 3 || $2 != int(($1 + $3 - 1) / $3)')" ]
check "rule: a warm-up round of one task per worker" \
    [ -z "$(cols "$tmp/o1/runs.csv" warmup_tasks workers | awk -F'\t' '$1 != $2')" ]
check "rule: rule_met = 1 (3 rounds, no time floor)" [ "$(cols "$tmp/o1/runs.csv" rule_met min_rounds | sort -u)" = "$(printf '1\t3')" ]
check "digest: one prefix length per case (the shortest run: seq's 3 tasks)" \
    [ "$(cols "$tmp/o1/runs.csv" digest_tasks digest_ok | sort -u)" = "$(printf '3\t1')" ]
# A time floor: one 2 ms task is far below 0.05 s, so pilots scale it up
# until a run lasts the floor (sleeps only get longer under load).
"$PB" sweep --out "$tmp/t" -W sleep -e seq -p latency_ms=2 --reps 2 --warmup 0 --min-rounds 1 \
    --min-time 0.05 -n 1 -q
check "time floor: pilots made the runs longer than 1 task ($(cols "$tmp/t/runs.csv" tasks | tr '\n' ' '))" \
    [ -z "$(cols "$tmp/t/runs.csv" tasks | awk '$1 <= 1')" ]
check "time floor: rule_met says whether the run lasted 0.05 s" \
    [ -z "$(cols "$tmp/t/runs.csv" rule_met wall_s | awk -F'\t' '($1 == 1) != ($2 >= 0.05)')" ]
# Noise on record: a capacity probe within the CPUs, shares in 0..100,
# procs_running >= 1 (the reader), the build kind the binary reports.
cores=$(getconf _NPROCESSORS_ONLN)
check "noise: 0 < capacity_cpus <= $cores CPUs (+5%)" \
    [ -z "$(cols "$tmp/o1/runs.csv" capacity_cpus | awk -v c="$cores" '!($1 > 0 && $1 <= c * 1.05)')" ]
odd=$(cols "$tmp/o1/runs.csv" steal_pct iowait_pct procs_running noise_window_s wall_s loadavg_1m others_cpu_s |
    awk -F'\t' 'function share(v) { return v == "" || (v >= 0 && v <= 100) }
        !(share($1) && share($2) && $3 >= 1 && $4 >= $5 && $6 >= 0 && $7 != "")')
# (steal and iowait are empty when no clock tick fell in a short run's window)
check "noise: steal and iowait are shares, procs_running >= 1, a window >= wall_s (odd rows: ${odd:-none})" \
    [ -z "$odd" ]
kind=$("$PB" --version | sed -n 's/.*build: \([^)]*\)).*/\1/p')
check "build: every row says '$kind', as poolbench --version" [ "$(cols "$tmp/o1/runs.csv" build | sort -u)" = "$kind" ]
if [ -n "${SANITIZE:-}" ]; then
    check "build: a SANITIZE=$SANITIZE build says so ($kind)" sh -c "case '$kind' in *+$SANITIZE) true ;; *) false ;; esac"
fi
"$PB" sweep --out "$tmp/np" -W sleep -e seq -p latency_ms=1 --reps 1 --warmup 0 --min-time 0 \
    -n 2 --probe-ms 0 -q
check "--probe-ms 0: no capacity figure" [ -z "$(cols "$tmp/np/runs.csv" capacity_cpus | tr -d '\n')" ]
"$PB" noise --json --ms 20 --label e2e >"$tmp/noise.json"
check "poolbench noise --json: one object with its label and a capacity" \
    sh -c "grep -q '^{\"label\":\"e2e\",' '$tmp/noise.json' && grep -q '\"capacity_cpus\":[0-9]' '$tmp/noise.json'"

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
bad "parameter 'span' belongs to none" advise -W sleep -p span=5
bad "bad executor 'seq'" advise -W sleep -e seq
bad "--reps" advise -W sleep -r 21

# -- advise: the prediction and its check, read as JSON -------------------
# Sleeping tasks wait ~40x longer than they compute: Goetz's N hits the
# cap.  (primes' W is its preemption on a loaded machine, so its N is only
# checked against the formula.)  Every figure is where the formula and the
# checked sizes say it must be.
"$PB" advise -W sleep,primes -p latency_ms=2 -p span=20000 -n 16 -r 1 --max-workers 8 \
    --json "$tmp/adv.json" >"$tmp/adv.out" 2>"$tmp/adv.err"
check "advise runs (exit $?)" [ -s "$tmp/adv.json" ]
check "advise prints one paragraph per workload" \
    sh -c '[ "$(grep -c "^  Goetz: N = " "$1")" = 2 ]' _ "$tmp/adv.out"
check "advise --json: the prediction, the check and the measured best per executor" \
    "$root/scripts/py.sh" -c 'import json, math, os, sys
adv = json.load(open(sys.argv[1]))
ncpu = os.cpu_count()
assert [a["workload"] for a in adv] == ["sleep", "primes"], adv
sleep, primes = adv
assert sleep["wait_compute_ratio"] > 3 and sleep["predicted"] == {"threads": 8, "procs": 8}, sleep
for a in adv:
    n = a["ncpu"] * a["utilization"] * (1 + a["wait_compute_ratio"])
    assert a["ncpu"] == ncpu, a
    # (the ratio in the JSON has 6 digits: either neighbour of n is right)
    assert a["predicted"]["threads"] in {max(1, min(8, f(n))) for f in (math.floor, math.ceil)}, (n, a)
    sizes = {1, min(ncpu, 8), max(1, a["predicted"]["threads"] // 4),
             max(1, a["predicted"]["threads"] // 2), a["predicted"]["threads"],
             min(8, 2 * a["predicted"]["threads"])}
    assert a["check_tasks"] == max(16, 4 * max(sizes)), a
    for k in ("threads", "procs"):
        assert a["measured_best"][k] in sizes, (k, a)
        assert a["measured_best_throughput"][k] > 0, (k, a)
' "$tmp/adv.json"
bad "--workers" topo --workers 0
bad "unknown" topo --bogus
bad "--tasks" overhead -n 5
bad "unknown executor 'x'" overhead -e x
bad "--workers" overhead -w 0
bad "--chunksize" overhead -c abc
bad "unknown option" overhead --bogus
bad "--order must be interleaved or grouped" sweep --out "$tmp/b" --order random
bad "--order-seed" sweep --out "$tmp/b" --order-seed x
bad "--min-rounds" sweep --out "$tmp/b" --min-rounds -1
bad "--min-time" sweep --out "$tmp/b" --min-time 4000
bad "--min-time" sweep --out "$tmp/b" --min-time abc
bad "--warmup-rounds" sweep --out "$tmp/b" --warmup-rounds 101
bad "--probe-ms" sweep --out "$tmp/b" --probe-ms 5000
bad "--ms" noise --ms 0
bad "unknown option" noise --bogus
bad "--warmup-tasks" run -W primes --warmup-tasks x
# -- the load dimensions: a configuration per meaningful combination --------
"$PB" sweep --out "$tmp/q" -W sleep -p latency_ms=2 -e seq,threads,procs -w 2 --rate 300 \
    --queue 0,2 --on-full block,reject,caller-runs --sample-ms 5 --reps 1 --warmup 0 \
    --min-rounds 2 --min-time 0 -n 8 -q 2>"$tmp/q.err"
check "load sweep: exit 0" [ $? = 0 ]
check "load sweep: the configurations that make sense, each once" python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/runs.csv")))
got = sorted((r["executor"], r["queue"], r["on_full"], r["arrival"], r["offered_rate"]) for r in rows)
want = sorted([("seq", "0", "block", "batch", ""), ("seq", "0", "block", "poisson", "300")] +
              [(e, "0", "block", "poisson", "300") for e in ("threads", "procs")] +
              [(e, "2", f, "poisson", "300") for e in ("threads", "procs")
               for f in ("block", "reject", "caller-runs") if (e, f) != ("procs", "caller-runs")])
assert got == want, (got, want)
assert len({r["config_id"] for r in rows}) == len(rows)
assert all(r["schema_version"] == "6" for r in rows)
' "$tmp/q"
check "load sweep: timeline.csv joins runs.csv on config_id, rep, sequence" python3 -c '
import csv, sys
runs = {(r["config_id"], r["rep"], r["sequence"]) for r in csv.DictReader(open(sys.argv[1] + "/runs.csv"))}
tl = list(csv.DictReader(open(sys.argv[1] + "/timeline.csv")))
keys = {(t["config_id"], t["rep"], t["sequence"]) for t in tl}
assert tl and keys == runs, (len(keys), len(runs))
' "$tmp/q"
bad "unknown policy 'drop' in --on-full" sweep --out "$tmp/b" --on-full drop
bad "listed twice in --on-full" sweep --out "$tmp/b" --on-full block,block
bad "--queue" sweep --out "$tmp/b" --queue x
bad "--rate" sweep --out "$tmp/b" --rate 1-x
bad "--chunksize" sweep --out "$tmp/b" --chunksize 2000000
bad "unknown arrival" sweep --out "$tmp/b" --arrival bursty
bad "--sample-ms" sweep --out "$tmp/b" --sample-ms 0
[ -e "$tmp/b/runs.csv" ] && { echo "FAIL a refused sweep wrote rows"; fail=1; }
exit $fail
