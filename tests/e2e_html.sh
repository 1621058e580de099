#!/bin/sh
# End to end: report.html, the web form of REPORT.md (scripts/webreport.py).
# A small real sweep, then scripts/report.sh on it: report.html beside
# REPORT.md, and scale.html for the SCALE.md it links to; the conversion's
# unit tests (tests/py/test_webreport.py); then headless Chromium renders the
# page to a PNG and dumps its DOM after its script ran with #pb-selftest
# (every table sorted by its second column), and tests/py/check_report_html.py
# checks both: the screenshot's size and that it is not blank, no JavaScript
# error (recorded by the page, and none on Chromium's console), every ##
# heading of REPORT.md an <h2>, every chart an inline <svg>, every table
# sorted; the same on scale.html, whose payload column ("4 KiB", "64 B",
# marks, a dash) must come out in a stated order.  Without chromium the browser part is skipped (exit 77, counted
# skipped by tests/run.sh) after the rest has run.  CHROMIUM names another
# browser command (default chromium).
# shellcheck disable=SC2317  # helpers are called through check()
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
scripts="$here/../scripts"
fail=0
tmp=$(mktemp -d)
browser=""
cleanup() {
    [ -n "$browser" ] && kill "$browser" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. "$(dirname "$0")/lib_e2e.sh"
r="$tmp/res"

for m in matplotlib markdown; do
    if ! "$scripts/py.sh" -c "import $m" 2>"$tmp/err"; then
        cat "$tmp/err"; echo "FAIL no python3 with $m (apt-get install python3-$m)"; exit 1
    fi
done

# -- a small real results folder, its report and report.html -----------------
"$PB" sweep --out "$r" -W primes,sleep -w 1,2 --reps 3 --warmup 0 -n 20 --min-time 0.02 \
    -p span=100000 -p latency_ms=2 -q 2>"$tmp/err" ||
    { cat "$tmp/err"; echo "FAIL poolbench sweep"; exit 1; }
cat >"$r/SCALE.md" <<'EOF'
# Scale: the thread pool against GLib's GThreadPool

| tasks | payload | GLib ns/task |
|---|--:|--:|
| 1k | 4 KiB | 500 (262..696) |
| 10k | 64 B | 510 |
| 100k | ★ 1 MiB | 509 (137..561) |
| 1M | – | 562 (137..651) |
| 2M | 900 KiB | 562 |
| 10M | n/a | 600 |
| 20M | 16 MiB † | 610 |

## Targets

- 100k: met.
EOF
out=$(sh "$scripts/report.sh" "$r" 2>"$tmp/err")
rc=$?
check "report.sh exits 0 ($rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$tmp/err"
check "report.sh prints REPORT.md's path, then report.html's" \
    [ "$out" = "$(printf '%s\n%s' "$r/REPORT.md" "$r/report.html")" ]
page="$r/report.html"
[ -s "$page" ] || { echo "FAIL no report.html"; exit 1; }
check "REPORT.md links SCALE.md; report.html links scale.html, written beside it" \
    sh -c "grep -q '](SCALE.md)' '$r/REPORT.md' && grep -q 'href=\"scale.html\"' '$page' && [ -s '$r/scale.html' ]"
check "report.html links no .md file" sh -c "! grep -Eq 'href=\"[^\"#]*\\.md[\"#]' '$page'"
check "report.html loads nothing from the network" \
    sh -c "! grep -Eiq '(src|href)=\"?(https?:)?//|<link |@import|url\\((https?:|//)' '$page'"

out=$("$scripts/py.sh" "$here/py/test_webreport.py" 2>&1)
check "tests/py/test_webreport.py" [ $? = 0 ]
echo "$out" | tail -n 3

# A results folder without REPORT.md: one clear line, exit 2.
mkdir "$tmp/empty"
"$scripts/py.sh" "$scripts/webreport.py" "$tmp/empty" >/dev/null 2>"$tmp/err"
check "webreport.py on a folder without REPORT.md exits 2 with one line" \
    sh -c "[ $? = 2 ] && [ \$(wc -l <'$tmp/err') = 1 ] && grep -q 'has no REPORT.md' '$tmp/err'"

# A python3 without markdown (and no other tried): one line naming the
# Debian package, exit 1.  Only where the PATH's python3 lacks it.
py=$(command -v python3)
if [ -n "$py" ] && ! "$py" -c 'import markdown' 2>/dev/null; then
    POOLBENCH_REEXEC=1 "$py" "$scripts/webreport.py" "$r" >/dev/null 2>"$tmp/err"
    check "webreport.py without markdown says so in one line, exit 1 ($py)" \
        sh -c "[ $? = 1 ] && [ \$(wc -l <'$tmp/err') = 1 ] && grep -q 'apt-get install python3-markdown' '$tmp/err'"
    cat "$tmp/err"
fi

# -- headless Chromium ---------------------------------------------------------
chromium=${CHROMIUM:-chromium}
if ! command -v "$chromium" >/dev/null 2>&1; then
    [ "$fail" = 0 ] || exit 1
    echo "$chromium is not installed (make deps, or apt-get install chromium): report.html not rendered"
    exit 77
fi

# chromium in the background, its pid kept for the trap; killed if it has
# not ended after $2 seconds (a loaded machine renders slowly: generous).
browse() { # output-file seconds chromium-args...
    o=$1 secs=$2; shift 2
    "$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$tmp/profile" --enable-logging=stderr --v=0 "$@" >"$o" 2>>"$tmp/chromium.err" &
    browser=$!
    n=0
    while kill -0 "$browser" 2>/dev/null && [ "$n" -lt "$secs" ]; do sleep 1; n=$((n + 1)); done
    if kill -0 "$browser" 2>/dev/null; then
        kill "$browser"; wait "$browser" 2>/dev/null; browser=""
        echo "chromium did not finish in $secs s: killed" >>"$tmp/chromium.err"
        return 1
    fi
    wait "$browser"; rc=$?; browser=""
    return $rc
}
: >"$tmp/chromium.err"
browse "$tmp/shot.out" 180 --screenshot="$tmp/shot.png" --window-size=1280,4000 "file://$page"
check "chromium renders report.html to a PNG" [ -s "$tmp/shot.png" ]
browse "$tmp/dom.html" 180 --dump-dom "file://$page#pb-selftest"
check "chromium dumps the DOM of report.html" [ -s "$tmp/dom.html" ]
if [ -s "$tmp/shot.png" ] && [ -s "$tmp/dom.html" ]; then
    "$scripts/py.sh" "$here/py/check_report_html.py" --png "$tmp/shot.png" --dom "$tmp/dom.html" \
        --report "$r/REPORT.md" --min-height 4000 || fail=1
fi
# The sort's size suffixes and marks: scale.html's table by its payload column.
browse "$tmp/scale-dom.html" 180 --dump-dom "file://$r/scale.html#pb-selftest"
"$scripts/py.sh" "$here/py/check_report_html.py" --dom "$tmp/scale-dom.html" --report "$r/SCALE.md" \
    --min-charts 0 || fail=1
col=$("$scripts/py.sh" -c 'import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
rows = re.findall(r"<tr[^>]*>(.*?)</tr>", dom, flags=re.S)[1:]
print(",".join(re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)[1] for r in rows))' "$tmp/scale-dom.html")
check "scale.html's payload column sorted as sizes, descending, blanks last ($col)" \
    [ "$col" = "16 MiB †,★ 1 MiB,900 KiB,4 KiB,64 B,n/a,–" ]
check "no error on Chromium's console (no Uncaught, no CONSOLE line)" \
    sh -c "! grep -Eq 'Uncaught|:CONSOLE' '$tmp/chromium.err'"
grep -E 'Uncaught|:CONSOLE|did not finish' "$tmp/chromium.err"
exit "$fail"
