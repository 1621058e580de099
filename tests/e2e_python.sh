#!/bin/sh
# End to end: Python's executors (py-seq, py-threads, py-procs; the runner
# scripts/pyrunner/runner.py) give the C digest for every workload (all
# claim identity); the runner's bad input exits 2 with a message; a Python
# worker that dies, a runner that is killed and tasks that hang become
# counted errors in a completed run, within a bound, never a hang; a Python
# run has pb_run's warm-up round (none for work that crashes or hangs); a
# sweep with py- executors sizes their runs by the rule, writes rows whose
# digests (over the case's digest_tasks) match the C baseline's, with the
# rule and noise columns filled, and its REPORT.md has the
# threads-or-processes table.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")/.." && pwd)
RUNNER="$here/scripts/pyrunner/runner.py"
PY=${POOLBENCH_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. "$(dirname "$0")/lib_e2e.sh"

# -- the Python generator and digest code, unit by unit -------------------
check "runner unit tests (generator, llround, digest records)" \
    env PYTHONDONTWRITEBYTECODE=1 "$PY" "$here/tests/py/test_pyrunner.py"

# -- the C digest on every Python executor ----------------------------------
while read -r wl params; do
    # shellcheck disable=SC2086
    if ! "$PB" run -W "$wl" -e seq -n 12 $params --json >"$tmp/c.json" 2>"$tmp/err"; then
        echo "FAIL $wl on seq exited non-zero:"; cat "$tmp/err"; fail=1; continue
    fi
    want=$(field "$tmp/c.json" digest)
    c_ok=$(field "$tmp/c.json" tasks_ok)
    for ex in py-seq py-threads py-procs; do
        out="$tmp/$wl-$ex.json"
        # shellcheck disable=SC2086
        if ! timeout 300 "$PB" run -W "$wl" -e "$ex" -w 2 -n 12 $params --json >"$out" 2>"$tmp/err"; then
            echo "FAIL $wl on $ex exited non-zero:"; cat "$tmp/err"; fail=1; continue
        fi
        got=$(field "$out" digest)
        ok=$(field "$out" tasks_ok)
        check "$wl on $ex: the C digest ($ok/$c_ok tasks ok)" \
            sh -c '[ "$1" = "$2" ] && [ "$3" = "$4" ]' _ "$got" "$want" "$ok" "$c_ok"
        [ "$got" = "$want" ] || { cat "$out"; cat "$tmp/err"; }
    done
done <<'LIST'
primes -p span=200000 -p start=1000
sha256 -p bytes=5000 -p rounds=3
mandelbrot -p tile=16 -p max_iter=300
blur -p tile=32 -p sigma=1.7
compress -p bytes=20000 -p level=6
compress -p bytes=3000 -p level=1
sleep -p latency_ms=1.5
http -p latency_ms=1 -p bytes=5000
file -p bytes=70000 -p files=3
fetch-hash -p latency_ms=1 -p bytes=3000
noop -p payload_bytes=1001
fault -p error_rate=0.4
table -p table_mb=2 -p lookups=5000
mix -p latency_ms=2 -p span=20000
LIST

# -- mandelbrot past its 32 x 32 grid: task 1024 + k computes tile k again,
# in C and in Python alike ------------------------------------------------
"$PB" run -W mandelbrot -e seq -n 1030 -p tile=2 -p max_iter=20 --json >"$tmp/c.json" 2>"$tmp/err"
"$PB" run -W mandelbrot -e py-seq -n 1030 -p tile=2 -p max_iter=20 --json >"$tmp/p.json" 2>>"$tmp/err"
check "mandelbrot over 1030 tiles: py-seq gives the C digest" \
    sh -c '[ -n "$1" ] && [ "$1" = "$2" ]' _ "$(field "$tmp/c.json" digest)" "$(field "$tmp/p.json" digest)"

# -- the warm-up round: one per worker by default, none where it could break
# the pool (a crash) -------------------------------------------------------
"$PB" run -W sleep -e py-threads -w 3 -n 6 -p latency_ms=1 --json >"$tmp/w.json" 2>"$tmp/err"
check "py-threads: a warm-up round of one task per worker" [ "$(field "$tmp/w.json" warmup_tasks)" = 3 ]
"$PB" run -W sleep -e py-seq -w 3 -n 6 -p latency_ms=1 --warmup-tasks 0 --json >"$tmp/w.json" 2>"$tmp/err"
check "py-seq: one worker, --warmup-tasks 0 honoured" \
    sh -c '[ "$1" = 0 ] && [ "$2" = 1 ]' _ "$(field "$tmp/w.json" warmup_tasks)" \
    "$(field "$tmp/w.json" workers)"
"$PB" run -W fault -e py-procs -w 2 -n 6 -p crash_rate=0.5 --json >"$tmp/w.json" 2>"$tmp/err"
check "py-procs with crashing tasks: no warm-up round" [ "$(field "$tmp/w.json" warmup_tasks)" = 0 ]

# -- bad input to the runner: exit 2 and a message naming it --------------
runner_bad() { # expected-substring, runner args...
    want=$1; shift
    "$PY" "$RUNNER" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 2 ] && grep -q -- "$want" "$tmp/err"; then
        echo "ok   runner exit 2: $*"
    else
        echo "FAIL runner: expected exit 2 and '$want' for: $* (got $rc)"; cat "$tmp/err"; fail=1
    fi
}
runner_bad "invalid choice: 'nope'" -W nope -e py-seq
runner_bad "invalid choice: 'py-fibers'" -W noop -e py-fibers -p payload_bytes=1
runner_bad "needs parameter 'start'" -W primes -e py-seq -p span=10
runner_bad "parameter 'span' must be an integer, got 'ten'" -W primes -e py-seq -p span=ten -p start=0
runner_bad "KEY=VALUE, got 'span'" -W primes -e py-seq -p span
runner_bad "--workers must be in" -W noop -e py-threads -w 0 -p payload_bytes=1
runner_bad "needs a server" -W http -e py-seq -p url= -p base_url= -p latency_ms=1 -p bytes=1 \
    -p connect_timeout_ms=1 -p timeout_ms=1

# -- bad combinations in the harness: exit 2 and one line -----------------
bad "unknown executor 'py-fibers'" run -W primes -e py-fibers
bad "cannot be pinned" run -W primes -e py-threads --pin compact
bad "cannot be pinned" run -W primes -e py-procs --cpus 0
bad "no bounded queue" run -W primes -e py-threads --queue 4
bad "--window and --transport need --executor procs" run -W primes -e py-procs --window 2
bad "--window and --transport need --executor procs" run -W primes -e py-procs --transport shm
bad "with Python: py-procs" run -W fault -e py-threads -p crash_rate=0.1
bad "listed twice" sweep --out "$tmp/sw" -e py-threads,py-threads
bad "drop the py- executors" sweep --out "$tmp/sw" -e py-threads -W fault -p crash_rate=0.5

# -- a Python worker that dies: counted errors, the run completes ---------
n=40
if timeout 120 "$PB" run -W fault -e py-procs -w 2 -n $n -p crash_rate=0.1 --json \
    >"$tmp/crash.json" 2>"$tmp/err"; then
    ok=$(field "$tmp/crash.json" tasks_ok)
    failed=$(field "$tmp/crash.json" tasks_failed)
    check "a dead py-procs worker fails tasks ($failed of $n) and the run completes" \
        sh -c '[ "$1" -ge 1 ] && [ $(($1 + $2)) = "$3" ]' _ "$failed" "$ok" "$n"
    check "those tasks fail with BrokenProcessPool (EX_EBROKEN)" \
        [ -n "$(field "$tmp/crash.json" errors.EX_EBROKEN)" ]
else
    echo "FAIL fault crash_rate on py-procs did not complete (status $?)"; cat "$tmp/err"; fail=1
fi

# -- a runner killed mid-run: every task counted, a message, exit 0 -------
cat >"$tmp/dying-python" <<'EOF'
#!/bin/sh
# Stands in for python3: dies of SIGKILL at once, as a runner the OOM
# killer takes would.
kill -9 $$
EOF
chmod +x "$tmp/dying-python"
if POOLBENCH_PYTHON="$tmp/dying-python" timeout 60 "$PB" run -W sleep -e py-threads -w 2 -n 5 \
    --json >"$tmp/dead.json" 2>"$tmp/err"; then
    check "a killed runner: all 5 tasks failed as EX_EWORKER" \
        sh -c '[ "$1" = 5 ] && [ "$2" = 5 ]' _ "$(field "$tmp/dead.json" tasks_failed)" \
        "$(field "$tmp/dead.json" errors.EX_EWORKER)"
    check "a killed runner: stderr says so" grep -q "died of signal 9" "$tmp/err"
else
    echo "FAIL a killed runner did not complete the run (status $?)"; cat "$tmp/err"; fail=1
fi

# -- hung tasks on py-procs: the deadline ends them (EX_ETIMEDOUT) --------
start=$(date +%s)
if timeout 120 "$PB" run -W fault -e py-procs -w 2 -n 30 -p hang_rate=0.2 --timeout-ms 200 \
    --json >"$tmp/hang.json" 2>"$tmp/err"; then
    took=$(( $(date +%s) - start ))
    check "hung Python tasks fail with EX_ETIMEDOUT, the run ends (${took} s)" \
        [ -n "$(field "$tmp/hang.json" errors.EX_ETIMEDOUT)" ]
else
    echo "FAIL hung py-procs tasks: the run did not complete (status $?)"; cat "$tmp/err"; fail=1
fi

# -- a sweep with Python executors: py-seq baseline, digests checked ------
if "$PB" sweep --out "$tmp/sw" -e threads,py-threads,py-procs -w 1,2 -W sleep,sha256 -n 6 \
    -p latency_ms=1 -p bytes=3000 --reps 1 --warmup 0 --min-rounds 3 --min-time 0.05 \
    -q 2>"$tmp/err"; then
    rows=$(grep -c ',"\{0,1\}py-' "$tmp/sw/runs.csv")
    check "sweep: py-seq once and py-threads, py-procs at 1 and 2 workers per workload ($rows rows)" \
        [ "$rows" = 10 ]
    bad_digest=$("$PY" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(sum(1 for r in rows if r["digest_ok"] != "1"))' "$tmp/sw/runs.csv")
    check "sweep: every row digest_ok=1 against the C baseline" [ "$bad_digest" = 0 ]
    # The Python rows get the C rows' treatment: sized by the rule's pilots
    # (beyond the floor of 6 tasks: 6 such tasks take well under 0.05 s),
    # the warm-up round, one digest length per case, the noise columns.
    py_rows=$("$PY" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
dt = {}
for r in rows:
    dt.setdefault(r["workload"], set()).add(r["digest_tasks"])
py = [r for r in rows if r["executor"].startswith("py-")]
good = [r for r in py if r["min_time_s"] == "0.05" and int(r["tasks"]) > 6 and int(r["rounds"]) >= 3
        and r["warmup_tasks"] == r["workers"] and r["noise_window_s"] != ""
        and len(dt[r["workload"]]) == 1 and int(r["tasks"]) >= int(r["digest_tasks"])]
print("%d/%d" % (len(good), len(py)))' "$tmp/sw/runs.csv")
    check "sweep: Python rows meet the rule, warm up one round, share the case's digest_tasks, record noise ($py_rows)" \
        [ "$py_rows" = 10/10 ]
    # The report's side-by-side table: rows with a verdict for both languages.
    if "$here/scripts/py.sh" "$here/scripts/report.py" "$tmp/sw" >/dev/null 2>"$tmp/err"; then
        check "report: the threads-or-processes section" \
            grep -q "^## Threads or processes, in C and in Python" "$tmp/sw/REPORT.md"
        # (C procs did not run: the Python side alone has both executors)
        check "report: the I/O-bound row has Python's verdict" \
            grep -q "^| I/O-bound: sleep.*| Python: [a-z].* |$" "$tmp/sw/REPORT.md"
        check "report: Python's speedups against py-seq, digests matched" \
            grep -q "^| sha256 | py-procs | [12] | .* | yes |$" "$tmp/sw/REPORT.md"
    else
        echo "FAIL report.py on the sweep folder"; cat "$tmp/err"; fail=1
    fi
else
    echo "FAIL sweep with py- executors failed"; cat "$tmp/err"; fail=1
fi

exit $fail
