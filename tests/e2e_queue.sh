#!/bin/sh
# End to end: the queue/ sub-folder of a results folder (make bench's queue
# step, made small: two arrival rates, one repetition, short runs) through
# scripts/report.sh.  The analysis's unit tests (tests/py/test_queues.py:
# the knee and capacity rules on synthetic rows) first; then: without
# queue/ the section says so in one line and no queue chart is drawn; with
# it, REPORT.md has the section after the pool-size one, its three charts
# are drawn (PNG and SVG) and embedded, and its key numbers (predicted and
# measured capacity, the knee, the rejected share, peak queued) equal what
# runs.csv and timeline.csv give when recomputed here; rejected submits are
# not reported as failed tasks or digest mismatches; a schema-5 folder
# (no load columns) still reports.
# shellcheck disable=SC2317  # helpers are called through check()
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
scripts="$here/../scripts"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. "$(dirname "$0")/lib_e2e.sh"
r="$tmp/res"
q="$r/queue"

has() { grep -q -F -- "$2" "$1"; }   # file, fixed string

if ! "$scripts/py.sh" -c 'import matplotlib' 2>"$tmp/err"; then
    cat "$tmp/err"; echo "FAIL no python3 with matplotlib"; exit 1
fi
check "queues.py unit tests (knee, capacity, overload pick, chunksize, schema 5)" \
    "$scripts/py.sh" "$here/py/test_queues.py"

# -- a results folder without queue/ -------------------------------------------
"$PB" sweep --out "$r" -W noop -w 1,2 --reps 1 --warmup 0 -n 10 --min-time 0.01 -q 2>"$tmp/err" ||
    { cat "$tmp/err"; echo "FAIL poolbench sweep (main folder)"; exit 1; }
sh "$scripts/report.sh" "$r" >/dev/null 2>"$tmp/err"
check "report.sh without queue/ exits 0" [ $? = 0 ]
check "the section says there is no queue/ in one line" has "$r/REPORT.md" "No \`queue/\` sub-folder in this results folder"
check "no queue chart without queue/" sh -c "! ls '$r/charts' | grep -q '^queue_'"
check "the skipped queue charts are listed" has "$r/REPORT.md" "queue: no queue/ sub-folder"

# -- the queue step, small ---------------------------------------------------------
common="--reps 1 --warmup 0 --min-rounds 5 --min-time 0.05 -q -W sleep -p latency_ms=5 -w 4 --sample-ms 10"
sweep_q() { # poolbench sweep arguments: into queue/, or the test ends here
    "$PB" sweep --out "$q" "$@" 2>"$tmp/err" || { cat "$tmp/err"; echo "FAIL poolbench sweep $*"; exit 1; }
}
# shellcheck disable=SC2086
sweep_q $common -e seq,threads,procs --rate 200,2000
# shellcheck disable=SC2086
sweep_q $common -e threads,procs --no-baseline --rate 2000 --queue 4,32 --on-full block,reject,caller-runs
sweep_q --reps 1 --warmup 0 --min-rounds 5 --min-time 0.02 -q -e threads,procs -W noop -w 2 -n 20 \
    -p payload_bytes=64 --chunksize 0,1,16

sh "$scripts/report.sh" "$r" >/dev/null 2>"$tmp/err"
rc=$?
check "report.sh with queue/ exits 0 ($rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$tmp/err"
rep="$r/REPORT.md"
for c in queue_rate queue_timeline queue_capacity; do
    png="$r/charts/$c.png"
    size=$(wc -c <"$png" 2>/dev/null || echo 0)
    magic=$(head -c 4 "$png" 2>/dev/null | tail -c 3)
    check "$c.png is a PNG over 15 KB ($size bytes)" sh -c "[ '$magic' = PNG ] && [ $size -gt 15000 ]"
    paths=$(grep -c '<path' "$r/charts/$c.svg" 2>/dev/null || echo 0)
    check "$c.svg has drawn data ($paths paths)" [ "$paths" -ge 10 ]
    check "REPORT.md embeds $c.png" has "$rep" "](charts/$c.png)"
    check "charts.json lists $c" has "$r/charts/charts.json" "\"png\": \"$c.png\""
done

# The section's numbers against the rows, recomputed here from the CSV files.
"$scripts/py.sh" - "$q" "$rep" "$scripts" >"$tmp/checks" 2>&1 <<'EOF'
import csv, os, statistics, sys
qdir, report, scripts = sys.argv[1:4]
sys.path.insert(0, scripts)
from pbresults import fmt  # the report's number format, nothing else
rows = list(csv.DictReader(open(os.path.join(qdir, "runs.csv"), newline="")))
text = open(report).read()
sec = text[text.index("## Queue size, backpressure"):]
sec = sec[:sec.index("\n## ")] if "\n## " in sec else sec
def say(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
say(text.index("## Pool size") < text.index("## Queue size, backpressure") < text.index("## Whole-process"),
    "the queue section comes after the pool-size section and before hyperfine's")
def num(r, k):
    return float(r[k]) if r.get(k) not in (None, "") else None
def cells(head, first):
    """Cells of the first table row in the section starting with `first` after `head`."""
    part = sec[sec.index(head):]
    for line in part.splitlines():
        if line.startswith("| " + first + " |"):
            return [c.strip() for c in line.strip("|").split(" | ")]
    return None
for ex, w in (("seq", 1), ("threads", 4), ("procs", 4)):
    open_loop = [r for r in rows if r["executor"] == ex and r["arrival"] == "poisson" and r["queue"] == "0"
                 and r["chunksize"] == "0"]
    rates = sorted({float(r["offered_rate"]) for r in open_loop})
    low = [r for r in open_loop if float(r["offered_rate"]) == rates[0]]
    s = statistics.mean(num(r, "cpu_mean_ms") + num(r, "blocked_mean_ms") for r in low)
    med = {x: statistics.median(num(r, "throughput") for r in open_loop if float(r["offered_rate"]) == x)
           for x in rates}
    p99 = {x: statistics.median(num(r, "latency_p99_ms") for r in open_loop if float(r["offered_rate"]) == x)
           for x in rates}
    if ex == "seq":
        cap = statistics.median(num(r, "throughput") for r in rows if r["executor"] == "seq"
                                and r["arrival"] == "batch" and r["workload"] == "sleep")
    else:
        cap = max(med.values())
    knee = next((x for x in rates if p99[x] > 3 * p99[rates[0]] or med[x] < 0.9 * x), None)
    c = cells("### Latency against arrival rate", "%s | %d" % (ex, w))
    if c is None:
        say(False, "%s has a row in the capacity table" % ex)
        continue
    say(c[3] == fmt(w * 1000 / s), "%s: predicted capacity %s = %d / %s ms (table: %s)" % (ex, fmt(w * 1000 / s), w,
                                                                                         fmt(s), c[3]))
    say(c[4].startswith(fmt(cap)), "%s: measured capacity %s (table: %s)" % (ex, fmt(cap), c[4]))
    want = "%s/s" % fmt(knee) if knee else "not reached"
    say(c[5].startswith(want), "%s: knee %s (table: %s)" % (ex, want, c[5]))
    if ex == "threads":
        say(knee == 2000, "threads: 2000/s, 2.5x a 4-worker pool of 5 ms tasks, is past the knee")
for r in rows:
    if r["on_full"] == "reject" and r["queue"] != "0":
        share = "%.0f%%" % (100 * float(r["tasks_rejected"]) / float(r["tasks"]))
        c = cells("### Queue capacity under overload", "%s | reject | %s" % (r["executor"], r["queue"]))
        say(c is not None and c[7] == share, "%s reject q%s: rejected %s of tasks (table: %s)"
            % (r["executor"], r["queue"], share, c[7] if c else None))
        say(float(r["tasks_rejected"]) > 0, "%s reject q%s rejected submits under 2000/s" % (r["executor"], r["queue"]))
        ok_sum = int(r["tasks_ok"]) + int(r["tasks_failed"]) + int(r["tasks_rejected"]) == int(r["tasks"])
        say(ok_sum and r["digest_ok"] == "", "%s reject q%s: ok + failed + rejected = tasks, digest_ok empty"
            % (r["executor"], r["queue"]))
tl = list(csv.DictReader(open(os.path.join(qdir, "timeline.csv"), newline="")))
for r in rows:
    if r["queue"] != "0" and r["on_full"] == "block":
        peak = max(int(t["queued"]) for t in tl if (t["config_id"], t["rep"], t["sequence"])
                   == (r["config_id"], r["rep"], r["sequence"]))
        c = cells("### Queue capacity under overload", "%s | block | %s" % (r["executor"], r["queue"]))
        say(c is not None and c[11] == str(peak) and peak <= int(r["queue"]) + int(r["workers"]),
            "%s block q%s: peak queued %d <= the bound + one per worker (table: %s)" % (r["executor"], r["queue"], peak,
                                                                      c[11] if c else None))
say("| threads | 2 | noop `payload_bytes=64` | 16 |" in sec, "the chunksize table has threads at chunksize 16")
say("Q = C x (B - S)" in sec and "Best p99 with throughput within 5%" in sec, "the advice gives Q and the pick")
EOF
cat "$tmp/checks"
grep -q '^FAIL' "$tmp/checks" && fail=1
grep -q '^ok' "$tmp/checks" || { echo "FAIL the section checks did not run"; fail=1; }

# Rejected submits are not failures: report.py on queue/ itself warns of neither.
"$scripts/py.sh" "$scripts/report.py" "$q" --out "$tmp/q.md" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail=1; }
check "a folder with rejected submits: no failed-tasks warning" sh -c "! grep -q 'failed tasks\*\*' '$tmp/q.md'"
check "a folder with rejected submits: no digest-mismatch warning" sh -c "! grep -q 'digest mismatch\*\*' '$tmp/q.md'"
check "a folder with rejected submits: its tables count them apart" has "$tmp/q.md" "submits rejected by the full queue (not failures"

# -- schema 5: no load columns ----------------------------------------------------
o="$tmp/old"
mkdir -p "$o"
"$scripts/py.sh" - "$r/runs.csv" "$o/runs.csv" <<'EOF'
import csv, sys
load = ["queue", "on_full", "arrival", "offered_rate", "achieved_rate", "submit_lag_max_ms", "chunksize",
        "tasks_rejected", "caller_ran"]
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
names = [k for k in rows[0] if k not in load]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=names, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        r["schema_version"] = "5"
        w.writerow(r)
EOF
cp -r "$q" "$o/queue"
"$scripts/py.sh" - "$o/queue/runs.csv" <<'EOF'
import csv, sys
load = ["queue", "on_full", "arrival", "offered_rate", "achieved_rate", "submit_lag_max_ms", "chunksize",
        "tasks_rejected", "caller_ran"]
rows = [r for r in csv.DictReader(open(sys.argv[1], newline="")) if r["arrival"] == "batch" and r["chunksize"] == "0"]
with open(sys.argv[1], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k not in load], extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
EOF
sh "$scripts/report.sh" "$o" >/dev/null 2>"$tmp/err"
rc=$?
check "report.sh on a schema-5 folder exits 0 ($rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$tmp/err"
check "a schema-5 queue/ reads as batch rows: no rate curve" has "$o/REPORT.md" "No open-loop rows with an unbounded queue"

exit "$fail"
