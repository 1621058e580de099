#!/bin/sh
# End to end: a small real sweep, then scripts/report.sh (plot.py +
# report.py) on it. Every expected chart exists as a non-empty PNG and an
# SVG with drawn data; REPORT.md's tables match runs.csv (a median
# recomputed here with awk); charts without data are skipped and said so,
# never drawn empty; warnings appear for digest mismatches and failed tasks;
# advise.json, overhead.jsonl and calibrate.json are reported when present;
# compare.py puts two folders side by side; report.sh rejects bad folders.
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

has() { grep -q -F -- "$2" "$1"; }   # file, fixed string

if ! "$scripts/py.sh" -c 'import matplotlib' 2>"$tmp/err"; then
    cat "$tmp/err"; echo "FAIL no python3 with matplotlib"; exit 1
fi

# -- a small real results folder --------------------------------------------
"$PB" sweep --out "$r" -W primes,sleep,noop -w 1,2 --reps 3 --warmup 0 -n 20 --min-time 0.02 \
    -p span=100000 -p latency_ms=2 --vary payload_bytes=64,65536 -q 2>"$tmp/err" ||
    { cat "$tmp/err"; echo "FAIL poolbench sweep"; exit 1; }
"$PB" calibrate --quick --json "$r/calibrate.json" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err"; echo "FAIL poolbench calibrate --quick"; fail=1; }
"$PB" overhead --json -n 2000 >"$r/overhead.jsonl" 2>"$tmp/err" ||
    { cat "$tmp/err"; echo "FAIL poolbench overhead"; fail=1; }
if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N --runs 2 --export-json "$r/hyperfine.json" -L executor seq,threads \
        "$PB run -e {executor} -w 2 -W sleep -n 4 -p latency_ms=1" >/dev/null 2>"$tmp/err" ||
        { cat "$tmp/err"; echo "FAIL hyperfine"; fail=1; }
else  # hyperfine's --export-json format, by hand
    cat >"$r/hyperfine.json" <<'EOF'
{"results":[{"command":"poolbench run -e seq -W sleep","mean":0.031,"stddev":0.001,"median":0.031,"min":0.030,"max":0.032,"times":[0.030,0.032],"parameters":{"executor":"seq","workload":"sleep"}},
{"command":"poolbench run -e threads -W sleep","mean":0.021,"stddev":0.001,"median":0.021,"min":0.020,"max":0.022,"times":[0.020,0.022],"parameters":{"executor":"threads","workload":"sleep"}}]}
EOF
fi
cat >"$r/machine.json" <<'EOF'
{"schema_version":1,"host":"e2e-host","timestamp_utc":"2026-01-01T00:00:00Z","cpu_model":"Test CPU 9000      ","cores":2,"pus":2,"is_vm":false,"governor":"performance","pin_policies":["none"],"reps":3,"warmup":0}
EOF

out=$(sh "$scripts/report.sh" "$r" 2>"$tmp/err")
rc=$?
check "report.sh exits 0 ($rc)" [ "$rc" = 0 ]
check "report.sh prints the report's path, then report.html's" \
    [ "$out" = "$(printf '%s\n%s' "$r/REPORT.md" "$r/report.html")" ]
[ "$rc" = 0 ] || cat "$tmp/err"
rep="$r/REPORT.md"
[ -f "$rep" ] || { echo "FAIL no REPORT.md"; exit 1; }

# -- every chart: a real PNG of some size, an SVG with data -----------------
charts="speedup_primes efficiency_primes speedup_noop throughput_sleep breakdown_primes
breakdown_sleep breakdown_noop latency_primes latency_sleep latency_noop overhead_payload hyperfine"
for c in $charts; do
    png="$r/charts/$c.png"
    svg="$r/charts/$c.svg"
    size=$(wc -c <"$png" 2>/dev/null || echo 0)
    magic=$(head -c 4 "$png" 2>/dev/null | tail -c 3)
    check "$c.png exists, is a PNG and is over 15 KB ($size bytes)" \
        sh -c "[ '$magic' = PNG ] && [ $size -gt 15000 ]"
    paths=$(grep -c '<path' "$svg" 2>/dev/null || echo 0)
    check "$c.svg has drawn data ($paths paths, a line2d or patch group)" \
        sh -c "[ $paths -ge 10 ] && grep -q -e 'id=\"line2d_' -e 'id=\"patch_' '$svg' && grep -q '</svg>' '$svg'"
    check "REPORT.md embeds $c.png" has "$rep" "](charts/$c.png)"
done
check "charts.json lists what was drawn" has "$r/charts/charts.json" '"png": "speedup_primes.png"'
check "overhead chart has calibration reference lines" has "$r/charts/overhead_payload.svg" "pipe round trip"
check "REPORT.md has the calibration table" has "$rep" "| measure | what | pinning |"
check "REPORT.md shows calibrate.json's pipe round trip" has "$rep" "| pipe_rtt_"

# -- the report's numbers come from runs.csv --------------------------------
# median over the repetitions of one configuration, formatted as report.py
# does (>= 100: no decimals; >= 10: one; >= 1: two; else %.3g).
median_of() { # workload executor workers column -> formatted median
    sed 's/"[^"]*"//g' "$r/runs.csv" | awk -F, -v wl="$1" -v ex="$2" -v w="$3" -v col="$4" '
        NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
        $idx["workload"] == wl && $idx["executor"] == ex && $idx["workers"] == w { v[n++] = $idx[col] + 0 }
        END {
            if (n == 0) { print "none"; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
            a = m < 0 ? -m : m
            if (a >= 100) printf "%.0f\n", m; else if (a >= 10) printf "%.1f\n", m
            else if (a >= 1) printf "%.2f\n", m; else printf "%.3g\n", m
        }'
}
row_has() { # workload executor workers value: a cell of that config's table row starts with value
    awk -v wl="### $1 " '/^### /{ on = (index($0, wl) == 1) } on' "$rep" |
        grep -F "| $2 | $3 | " | grep -q -F -e "| $4 (" -e "**$4 (" -e "| $4 |"
}
tp=$(median_of primes threads 2 throughput)
check "primes threads x2: median throughput $tp (runs.csv) is in REPORT.md's row" row_has primes threads 2 "$tp"
sp=$(median_of primes procs 2 speedup)
check "primes procs x2: median speedup $sp (runs.csv) is in REPORT.md's row" row_has primes procs 2 "$sp"
p95=$(median_of sleep threads 2 latency_p95_ms)
check "sleep threads x2: median p95 $p95 ms (runs.csv) is in REPORT.md's row" row_has sleep threads 2 "$p95"
check "REPORT.md names the machine, its CPU model trimmed" has "$rep" "| CPU | Test CPU 9000 |"
check "chart titles name the CPU model trimmed" has "$r/charts/speedup_primes.svg" "Test CPU 9000, 2 cores"
check "REPORT.md states the aggregation" has "$rep" "median over the repetitions"
check "REPORT.md marks a best cell" has "$rep" "$(printf '\342\230\205')"
for wl in primes sleep noop; do
    check "REPORT.md has a verdict for $wl" sh -c "grep -A2 '^### $wl ' '$rep' >/dev/null && grep -q -e '^- \*\*$wl\*\*' '$rep'"
done
check "REPORT.md has the overhead table" has "$rep" "| procs | 2 | 2000 |"
check "REPORT.md has hyperfine's table" has "$rep" "| command | runs |"
check "REPORT.md notes advise.json is absent" has "$rep" "advise.json is absent"

# advise.json when present
cat >"$r/advise.json" <<'EOF'
[{"workload":"sleep","params":"latency_ms=2","ncpu":2,"wait_ms":2.0,"compute_ms":0.01,"utilization":1.0,
  "predicted":{"threads":402,"procs":402},"measured_best":{"threads":2,"procs":2}}]
EOF
"$scripts/py.sh" "$scripts/report.py" "$r" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail=1; }
check "REPORT.md has the advise table from advise.json" has "$rep" "| 402 / 402 | 2 / 2 |"

# -- no data, no chart; warnings for bad rows --------------------------------
b="$tmp/bad"
mkdir -p "$b"
"$scripts/py.sh" - "$r/runs.csv" "$b/runs.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
rows = [x for x in rows if x["workload"] == "primes"]
rows[-1]["digest_ok"] = "0"
rows[-1]["tasks_failed"] = "3"
rows[-1]["errors"] = "EX_EWORKER=3"
with open(sys.argv[2], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
EOF
sh "$scripts/report.sh" "$b" >/dev/null 2>"$tmp/err"
check "report.sh on a primes-only folder without machine.json exits 0" [ $? = 0 ]
check "no throughput chart without I/O-bound rows" [ ! -e "$b/charts/throughput_sleep.png" ]
check "no overhead chart without noop rows" [ ! -e "$b/charts/overhead_payload.png" ]
check "no hyperfine chart without hyperfine.json" [ ! -e "$b/charts/hyperfine.png" ]
check "the skipped charts are listed with a reason" sh -c "grep -q 'throughput: no I/O-bound workload' '$b/REPORT.md' && grep -q 'hyperfine: hyperfine.json absent' '$b/REPORT.md'"
check "a digest mismatch is warned about" has "$b/REPORT.md" "digest mismatch"
check "failed tasks are warned about" has "$b/REPORT.md" "EX_EWORKER=3"
check "a missing machine.json reads as unknown" has "$b/REPORT.md" "| CPU | unknown |"
check "a missing calibrate.json is said so" has "$b/REPORT.md" "calibrate.json is absent"
check "the overhead chart's absence is explained" has "$b/REPORT.md" "overhead (noop): needs noop rows"

# -- compare.py ----------------------------------------------------------------
cout=$("$scripts/py.sh" "$scripts/compare.py" "$r" "$b" --out "$tmp/cmp" 2>"$tmp/err")
check "compare.py exits 0 and prints COMPARE.md's path" [ "$cout" = "$tmp/cmp/COMPARE.md" ]
check "COMPARE.md has one column per machine" has "$tmp/cmp/COMPARE.md" "| e2e-host: tasks/s (speedup) |"
size=$(wc -c <"$tmp/cmp/compare_speedup_primes.png" 2>/dev/null || echo 0)
check "compare.py draws the primes speedup chart ($size bytes)" [ "$size" -gt 15000 ]

# -- bad usage -----------------------------------------------------------------
sh "$scripts/report.sh" "" >/dev/null 2>"$tmp/err"
check "report.sh with an empty RESULTS exits 2 with a message" sh -c "[ $? = 2 ] && grep -q RESULTS '$tmp/err'"
sh "$scripts/report.sh" "$tmp" >/dev/null 2>"$tmp/err"
check "report.sh on a folder without runs.csv exits 2" sh -c "[ $? = 2 ] && grep -q 'not a results folder' '$tmp/err'"

exit "$fail"
