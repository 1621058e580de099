#!/bin/sh
# Runs every cmocka test binary given, then every tests/e2e_*.sh script, and
# ends with the totals on one line: "N passed, N failed", after a line
# "N skipped" when tests were skipped (each says why in its output): a
# cmocka test that called skip(), a binary's whole mpi variant that cannot
# run here (its line "mpi: not tested here: <why>", tests/util.h), or an
# e2e script that exited 77.
# A binary that dies without cmocka's summary, or that ran no test at all,
# counts as one failure.
# VALGRIND=1 runs each binary under valgrind --error-exitcode=1, and not
# the e2e scripts: they drive the same poolbench as the plain suite, not
# under valgrind. SKIP_E2E=1 skips them too.
set -u
here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
skipped=0
failures=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT INT TERM
# Whole seconds since boot, for the time each binary and script took.
now() { cut -d. -f1 /proc/uptime; }
for bin in "$@"; do
    name=$(basename "$bin")
    t0=$(now)
    if [ "${VALGRIND:-0}" = 1 ]; then
        EX_TEST_VALGRIND=1 valgrind -q --error-exitcode=1 --leak-check=full \
            --errors-for-leak-kinds=definite --track-fds=no \
            --trace-children=no "$bin" >"$log" 2>&1
    else
        "$bin" >"$log" 2>&1
    fi
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    variants=$(grep -c '^mpi: not tested here: ' "$log")
    ran=$(sed -n 's/^\[==========\] \([0-9][0-9]*\) test(s) run\..*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "$name: exited with status $rc without a cmocka failure summary" >&2
    elif [ "$ran" -eq 0 ] || [ $((p + f + s)) -eq 0 ]; then
        f=1
        echo "$name: ran no test (no cmocka summary with a test count)" >&2
    fi
    echo "$name: $(($(now) - t0)) s"
    passed=$((passed + p))
    skipped=$((skipped + s + variants))
    failed=$((failed + f))
    [ "$f" -ne 0 ] && failures="$failures $name"
done
if [ "${VALGRIND:-0}" = 1 ]; then
    echo "e2e scripts: not run under VALGRIND=1 (they drive the plain build's poolbench: make test runs them)"
elif [ "${SKIP_E2E:-0}" != 1 ]; then
    for script in "$here"/e2e_*.sh; do
        [ -e "$script" ] || continue
        name=$(basename "$script")
        t0=$(now)
        sh "$script" >"$log" 2>&1
        rc=$?
        took="$(($(now) - t0)) s"
        if [ "$rc" = 0 ]; then
            passed=$((passed + 1))
            echo "[       OK ] $name ($took)"
        elif [ "$rc" = 77 ]; then
            skipped=$((skipped + 1))
            cat "$log"
            echo "[  SKIPPED ] $name ($took): $(tail -n 1 "$log")"
        else
            failed=$((failed + 1))
            failures="$failures $name"
            cat "$log"
            echo "[  FAILED  ] $name ($took)"
        fi
    done
fi
[ -n "$failures" ] && echo "failing:$failures"
[ "$skipped" -gt 0 ] && echo "$skipped skipped (the reasons are above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
