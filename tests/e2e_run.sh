#!/bin/sh
# End to end: `poolbench run` gives the same digest on seq, threads and
# procs for every workload; bad input exits 2 with one line naming it; a
# dead server and crashing workers become counted errors in a completed run.
set -u
PB=${POOLBENCH:-./poolbench}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. "$(dirname "$0")/lib_e2e.sh"




# -- the same digest on every backend ------------------------------------
while read -r wl params; do
    digests=""
    for ex in seq threads procs; do
        out="$tmp/$wl-$ex.json"
        # shellcheck disable=SC2086
        if ! "$PB" run -W "$wl" -e "$ex" -w 2 -n 12 $params --json >"$out" 2>"$tmp/err"; then
            echo "FAIL $wl on $ex exited non-zero:"; cat "$tmp/err"; fail=1; continue
        fi
        ok=$(field "$out" tasks_ok)
        # fault fails some tasks on purpose; its digest covers them
        [ "$wl" = fault ] || [ "$ok" = 12 ] || { echo "FAIL $wl on $ex: tasks_ok=$ok, expected 12"; cat "$out"; fail=1; }
        digests="$digests $(field "$out" digest)"
    done
    n=$(echo "$digests" | tr ' ' '\n' | sed '/^$/d' | sort -u | wc -l)
    check "$wl: one digest on seq, threads and procs ($n distinct)" [ "$n" = 1 ]
done <<'LIST'
primes -p span=200000
sha256 -p bytes=65536 -p rounds=2
mandelbrot -p tile=32
blur -p tile=64
compress -p bytes=32768
sleep -p latency_ms=1
http -p latency_ms=1 -p bytes=5000
file -p bytes=4096 -p files=4
fetch-hash -p latency_ms=1 -p bytes=3000
noop -p payload_bytes=1000
fault -p error_rate=0.3 -p latency_ms=0
LIST

"$PB" run -W fault -e threads -w 2 -n 100 -p error_rate=0.3 -p latency_ms=0 --json >"$tmp/f.json" 2>"$tmp/err"
e=$(field "$tmp/f.json" errors.EX_ETASK:77)
check "fault error_rate=0.3: about 30 of 100 fail with code 77 (${e:-0})" inrange "${e:-0}" 15 45

# -- bad input: exit 2 and one line naming the problem --------------------
bad "unknown executor 'fibers'" run -W primes -e fibers
bad "unknown workload 'nope'" run -W nope
bad "unknown parameter 'foo'" run -W sha256 -p foo=1
bad "bytes" run -W sha256 -p bytes=x
bad "bytes" run -W sha256 -p bytes=0
bad "--max-tasks-per-worker needs --executor procs" run -W sha256 -e threads --max-tasks-per-worker 2
bad "--window and --transport need --executor procs" run -W sha256 -e threads --window 2
bad "--window and --transport need --executor procs" run -W sha256 -e seq --transport shm
bad "--workers" run -W primes -w 0
bad "--workers" run -W primes -w abc
bad "--tasks" run -W primes -n -3
bad "--workload is required" run
bad "unknown option" run -W primes --bogus
bad "procs" run -W fault -e threads -p crash_rate=0.1
bad "procs" run -W fault -e seq -p crash_rate=0.1
bad "unknown command" frobnicate

# -- every command is listed by --help, and answers its own --help ---------
cmds=$("$PB" --help | sed -n '/^commands:/,/^$/s/^  \([a-z]*\) .*/\1/p')
ncmds=$(echo "$cmds" | wc -w)
check "poolbench --help lists the commands ($ncmds)" [ "$ncmds" -ge 10 ]
for c in $cmds; do
    check "poolbench $c --help: exit 0 and its usage" \
        sh -c '"$1" "$2" --help 2>&1 | head -1 | grep -q "^usage: poolbench $2"' _ "$PB" "$c"
    check "'$c' is among the accepted commands of the unknown-command message" \
        sh -c '"$1" frobnicate 2>&1 | grep -q -e " $2[,;]"' _ "$PB" "$c"
done
bad "--port" serve --port 70000

# -- pinning: the binding obtained is the one planned ----------------------
# Every worker that ran a task ran it where the plan put it.  (On a loaded
# machine one worker may take all the tasks before the other runs: an
# unobserved worker is no failure.)
within_plan() { # observed plan
    [ -n "$1" ] || return 1
    for w in $1; do
        case " $2 " in *" $w "*) ;; *) return 1 ;; esac
    done
}
for ex in threads procs; do
    "$PB" run -W primes -e "$ex" -w 2 --pin compact -n 20 -p span=100000 --json >"$tmp/pin.json" 2>"$tmp/err"
    plan=$(field "$tmp/pin.json" pinning | sed -n 's/^compact: //p' | sed 's/->PU/:/g')
    seen=$(field "$tmp/pin.json" cpus_observed)
    check "$ex --pin compact: observed '$seen' within planned '$plan'" within_plan "$seen" "${plan:-none planned}"
done

# -- a dead server: counted errors, a completed run -----------------------
port=$(( 20000 + $$ % 20000 ))
"$PB" run -W http -e threads -w 2 -n 6 --url "http://127.0.0.1:$port/" \
    -p connect_timeout_ms=500 --json >"$tmp/dead.json" 2>"$tmp/err"
rc=$?
check "unreachable --url: exit 0" [ "$rc" = 0 ]
check "unreachable --url: 6 failed tasks" [ "$(field "$tmp/dead.json" tasks_failed)" = 6 ]
check "unreachable --url: curl's connect error counted" [ "$(field "$tmp/dead.json" errors.EX_ETASK:1007)" = 6 ]
check "unreachable --url: server recorded as external" [ "$(field "$tmp/dead.json" server)" = external ]

# -- /status/500 counted as errors ----------------------------------------
"$PB" run -W http -e procs -w 2 -n 4 -p bytes=0 -p latency_ms=0 --json >"$tmp/ok.json" 2>"$tmp/err"
check "http against the embedded server: 4 ok" [ "$(field "$tmp/ok.json" tasks_ok)" = 4 ]
srv=$(field "$tmp/ok.json" server)
check "embedded server recorded with its scheduling ('$srv')" \
    sh -c '[ "$1" = "loopback SCHED_FIFO" ] || [ "$1" = "loopback normal" ]' _ "$srv"
# Without CAP_SYS_NICE the server stays at normal priority: recorded, and a
# note says so (setpriv drops the capability even for root).
if command -v setpriv >/dev/null && setpriv --bounding-set -sys_nice true 2>/dev/null; then
    setpriv --bounding-set -sys_nice "$PB" run -W http -e threads -w 2 -n 4 -p bytes=0 \
        -p latency_ms=0 --json >"$tmp/nonrt.json" 2>"$tmp/nonrt.err"
    check "no CAP_SYS_NICE: server recorded as normal" \
        [ "$(field "$tmp/nonrt.json" server)" = "loopback normal" ]
    check "no CAP_SYS_NICE: one note on stderr" \
        [ "$(grep -c 'note: the loopback server runs at normal priority' "$tmp/nonrt.err")" = 1 ]
    check "no CAP_SYS_NICE: the run still completes" [ "$(field "$tmp/nonrt.json" tasks_ok)" = 4 ]
fi

# -- load: an open loop, a bounded queue, ex_map, the gauges' timeline ----
bad "--rate" run -W noop --rate 0
bad "--rate" run -W noop --rate fast
bad "unknown arrival 'burst'" run -W noop --rate 10 --arrival burst
bad "--arrival needs --rate" run -W noop --arrival fixed
bad "unknown --on-full 'drop'" run -W noop --queue 4 --on-full drop
bad "--on-full needs a bounded --queue" run -W noop --on-full reject
bad "caller-runs is for seq and threads" run -W noop -e procs --queue 4 --on-full caller-runs
bad "exclude each other" run -W noop --rate 100 --chunksize 4
bad "--chunksize" run -W noop --chunksize 0
bad "--timeline needs --sample-ms" run -W noop --timeline "$tmp/x.csv"
bad "--sample-ms" run -W noop --sample-ms 0
"$PB" run -W sleep -p latency_ms=1 -e threads -w 2 -n 40 --rate 400 --arrival fixed \
    --sample-ms 5 --timeline "$tmp/tl.csv" --json >"$tmp/rate.json" 2>"$tmp/err"
check "open loop: 40 ok" [ "$(field "$tmp/rate.json" tasks_ok)" = 40 ]
check "open loop: arrival and offered rate recorded" \
    [ "$(field "$tmp/rate.json" arrival)/$(field "$tmp/rate.json" offered_rate)" = fixed/400 ]
# 40 arrivals 2.5 ms apart span 97.5 ms: the run cannot be shorter.
check "open loop: the run lasts the schedule ($(field "$tmp/rate.json" wall_s) s)" \
    python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 0.0975)' "$(field "$tmp/rate.json" wall_s)"
check "timeline: a header and samples" \
    python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows and list(rows[0])[:3] == ["t_s", "queued", "running"], rows[:1]
assert [float(r["t_s"]) for r in rows] == sorted(float(r["t_s"]) for r in rows)
last = rows[-1]
assert last["queued"] == last["running"] == "0" and int(last["completed"]) >= 40, last
' "$tmp/tl.csv"
"$PB" run -W sleep -p latency_ms=50 -e threads -w 1 -n 12 --queue 2 --on-full reject --json \
    >"$tmp/rej.json" 2>"$tmp/err"
rej=$(field "$tmp/rej.json" tasks_rejected)
check "reject: rejected apart from failed (rejected $rej, failed $(field "$tmp/rej.json" tasks_failed))" \
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["tasks_failed"] == 0 and r["tasks_rejected"] >= 1 and r["errors"] == {}, r
assert r["tasks_ok"] + r["tasks_rejected"] == 12, r
' "$tmp/rej.json"
for ex in seq threads procs; do
    "$PB" run -W primes -p span=5000 -e "$ex" -w 2 -n 30 --json >"$tmp/m0.json" 2>"$tmp/err"
    "$PB" run -W primes -p span=5000 -e "$ex" -w 2 -n 30 --chunksize 7 --json >"$tmp/m7.json" 2>"$tmp/err"
    check "$ex: ex_map with chunksize 7 gives the ex_submit digest" \
        [ "$(field "$tmp/m0.json" digest)" = "$(field "$tmp/m7.json" digest)" ]
done

# -- crashing workers in the process pool ---------------------------------
"$PB" run -W fault -e procs -w 2 -n 100 -p crash_rate=0.1 -p latency_ms=0 --json \
    >"$tmp/crash.json" 2>"$tmp/err"
rc=$?
check "fault crash_rate=0.1 on procs: exit 0" [ "$rc" = 0 ]
w=$(field "$tmp/crash.json" errors.EX_EWORKER)
okn=$(field "$tmp/crash.json" tasks_ok)
check "fault crash_rate=0.1: about 10 of 100 EX_EWORKER (${w:-0})" inrange "${w:-0}" 3 25
check "fault crash_rate=0.1: the rest ok ($okn)" [ $(( ${w:-0} + ${okn:-0} )) = 100 ]

exit $fail
