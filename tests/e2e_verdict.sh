#!/bin/sh
# End to end: the verdicts and warnings of scripts/report.py on a synthetic
# results folder whose throughputs are chosen so that the exact
# Mann-Whitney p-values are known by hand: with 5 runs a side, p = 2 x (the
# number of rank arrangements with U <= u) / C(10, 5) = 252, so U = 0, 2, 3
# give p = 2/252 = 0.0079, 8/252 = 0.032, 14/252 = 0.056; with 3 a side
# U = 0 gives 2/20 = 0.1.  pbresults' rank test (scipy) must match them and,
# for every case, an exact count of the arrangements done here, to 1e-12;
# the verdict's wording is checked on both sides of 0.05, and for a
# difference that is significant but inside the run-to-run spread.  Also:
# the ideal rate by rounds, and the noise, rule and build warnings naming
# the runs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
scripts="$here/../scripts"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
PB=${POOLBENCH:-./poolbench}
. "$(dirname "$0")/lib_e2e.sh"
has() { grep -q -F -- "$2" "$1"; }
r="$tmp/res"
mkdir -p "$r"

# -- the synthetic folder ----------------------------------------------------
# One CPU workload per case, threads (the better) against procs at 2 workers:
#   primes      U = 0: threads 106..110, procs 101..105 -> p = 0.0079, faster
#   sha256      U = 2: -> p = 0.032, faster (change 4.9% > spread ~2.2%)
#   mandelbrot  U = 3: -> p = 0.056, no significant difference
#   blur        U = 0, one threads run at 200: p = 0.0079, faster: one
#               outlying run does not widen the spread (a median deviation)
#   compress    3 runs a side, U = 0: p = 0.1, no significant difference
#   noop        20 a side, procs 100, 110, ..., 290, threads 45 higher: U =
#               120 of 400, p = 0.03 < 0.05, but the 23% difference is
#               within the 38% run-to-run spread: no significant difference
cat >"$tmp/cases" <<EOF
primes 106,107,108,109,110 101,102,103,104,105
sha256 105,106,108,109,110 101,102,103,104,107
mandelbrot 104,106,108,109,110 101,102,103,105,107
blur 110,111,112,113,200 100,101,102,103,104
compress 104,105,106 101,102,103
noop $(seq -s, 145 10 335) $(seq -s, 100 10 290)
EOF
hdr="schema_version,config_id,workload,workload_kind,params,executor,workers,pin,rep,tasks,rounds,min_rounds,min_time_s,rule_met,wall_s,throughput,speedup,latency_p95_ms,cores,tasks_failed,digest_ok,capacity_cpus,steal_pct,others_cpu_s,noise_window_s,build"
echo "$hdr" >"$r/runs.csv"
row() { # workload kind params executor workers rep tasks throughput [rule_met capacity steal others build]
    printf '4,%s|%s|%s|%s|none,%s,%s,%s,%s,%s,none,%s,%s,%s,1,0.1,%s,1.0,%s,,1.0,2,0,,%s,%s,%s,1.0,%s\n' \
        "$1" "$3" "$4" "$5" "$1" "$2" "$3" "$4" "$5" "$6" "$7" $(( ($7 + $5 - 1) / $5 )) "${9:-1}" "$8" \
        "${10:-1.98}" "${11:-0.0}" "${12:-0.01}" "${13:-optimized}"
}
while read -r wl a b; do
    i=0
    for v in $(echo "$a" | tr , ' '); do i=$((i + 1)); row "$wl" cpu "n=1" threads 2 "$i" 100 "$v" >>"$r/runs.csv"; done
    i=0
    for v in $(echo "$b" | tr , ' '); do i=$((i + 1)); row "$wl" cpu "n=1" procs 2 "$i" 100 "$v" >>"$r/runs.csv"; done
done <"$tmp/cases"
# I/O: 400 tasks on 64 workers at 5 ms are 7 rounds: ideal 400 / (7 x 5 ms)
# = 11429 tasks/s (not 64 / 5 ms = 12800); 10000 tasks/s is 87.5% of it.
# Its runs carry the noise to be warned about: rep 1 steal 5%, rep 2 other
# processes 0.5 CPU s over 1 s on 2 CPUs (25%), rep 3 a probe that got 1.2
# of 2 CPUs, rep 4 shorter than the rule, rep 5 an unoptimised build.
{
    row sleep io "latency_ms=5" threads 64 1 400 10000 1 1.98 5.0
    row sleep io "latency_ms=5" threads 64 2 400 10000 1 1.98 0.0 0.5
    row sleep io "latency_ms=5" threads 64 3 400 10000 1 1.2
    row sleep io "latency_ms=5" threads 64 4 400 10000 0
    row sleep io "latency_ms=5" threads 64 5 400 10000 1 1.98 0.0 0.01 unoptimized
} >>"$r/runs.csv"

out=$("$scripts/py.sh" "$scripts/report.py" "$r" 2>"$tmp/err")
check "report.py exits 0 on the synthetic folder" [ "$out" = "$r/REPORT.md" ]
[ "$out" = "$r/REPORT.md" ] || cat "$tmp/err"
rep="$r/REPORT.md"
verdict() { # workload -> its comparison line in REPORT.md
    awk -v wl="### $1 " '/^### /{ on = (index($0, wl) == 1) } on' "$rep" | grep -e '^- threads' -e '^- \*\*threads' |
        head -n 1
}

# -- p-values: pbresults (scipy) against the hand values ----------------------
cat >"$tmp/p.py" <<EOF
# needs: scipy
import sys
sys.path.insert(0, "$scripts")
from functools import lru_cache
from math import comb
import pbresults as pb


@lru_cache(None)
def ways(m, n, u):
    """Orderings of m a's and n b's in which u (a, b) pairs have a > b: the
    largest value is an a (above all n b's) or a b."""
    if u < 0:
        return 0
    if m == 0 or n == 0:
        return 1 if u == 0 else 0
    return ways(m - 1, n, u - n) + ways(m, n - 1, u)


def exact_p(a, b):
    m, n = len(a), len(b)
    u = sum(1 for x in a for y in b if x > y)
    le = sum(ways(m, n, k) for k in range(u + 1))
    ge = sum(ways(m, n, k) for k in range(u, m * n + 1))
    return min(1.0, 2 * min(le, ge) / comb(m + n, m))


cases = [l.split() for l in open("$tmp/cases")]
hand = {"primes": 2 / 252, "sha256": 8 / 252, "mandelbrot": 14 / 252, "blur": 2 / 252, "compress": 2 / 20}
for wl, a, b in cases:
    a = [float(x) for x in a.split(",")]
    b = [float(x) for x in b.split(",")]
    p, method, u = pb.mann_whitney(a, b)
    want = hand.get(wl, exact_p(a, b))
    ok = abs(p - want) < 1e-12 and abs(exact_p(a, b) - want) < 1e-12 and method == "exact"
    print(wl, "ok" if ok else "BAD p=%r (hand %r, counted %r) %s" % (p, want, exact_p(a, b), method))
    if wl == "noop":
        print("noop-p", "%.2g" % p)
EOF
"$scripts/py.sh" "$tmp/p.py" >"$tmp/p.txt" 2>&1
for wl in primes sha256 mandelbrot blur compress noop; do
    check "$wl: the rank test's p equals the hand value ($(grep "^$wl " "$tmp/p.txt"))" \
        grep -q "^$wl ok$" "$tmp/p.txt"
done

# -- the wording on both sides of 0.05 ----------------------------------------
says() { # workload, a fixed string its verdict holds, [a word it must not hold]
    v=$(verdict "$1")
    echo "$v" | grep -q -F -- "$2" && { [ -z "${3:-}" ] || ! echo "$v" | grep -q -- "$3"; }
}
check "primes (p = 0.0079 < 0.05, 4.9% > spread): 'faster' with its p-value" \
    says primes '**threads is 1.05x faster than procs at 2 workers**: 108 vs 103 tasks/s, p = 0.0079'
check "sha256 (p = 0.032 < 0.05): 'faster', p = 0.032" says sha256 'faster than procs at 2 workers**: 108 vs 103 tasks/s, p = 0.032'
check "mandelbrot (p = 0.056 >= 0.05): 'no significant difference (p = 0.056)'" \
    says mandelbrot '**no significant difference (p = 0.056)**' faster
check "blur (p = 0.0079, one outlying run): faster" says blur 'faster than procs at 2 workers**: 112 vs 102 tasks/s, p = 0.0079'
np=$(sed -n 's/^noop-p //p' "$tmp/p.txt")
check "noop (p = $np < 0.05, 23% inside a 38% spread): no significant difference, says why" \
    says noop "no significant difference (p = $np, but the 23.1% difference is within the 38.0% run-to-run spread)" faster
check "compress (3 a side, p = 0.1): 'no significant difference (p = 0.1)'" \
    says compress '**no significant difference (p = 0.1)**' faster
check "the verdicts name the test" has "$rep" "Mann-Whitney U, exact, 5 vs 5 runs"

# -- the ideal rate by rounds ------------------------------------------------------
check "sleep: 88% of the ideal 11429 tasks/s (400 tasks in 7 rounds of 64)" \
    has "$rep" "88% of the ideal rate (11429 tasks/s for 400 tasks in 7 rounds of 64)"
check "the legend states the ideal's formula" has "$rep" "tasks / (ceil(tasks / workers) x latency)"

# -- warnings naming the runs ---------------------------------------------------------
sid='`sleep|latency_ms=5|threads|64|none`'
warn_has() { grep '^- ' "$rep" | grep -F -- "$1" | grep -q -F -- "$2"; }
check "steal > 2% is warned about, naming rep 1" warn_has "steal above 2%" "$sid rep 1"
check "another process competing is warned about, naming rep 2" warn_has "other processes competed" "$sid rep 2"
check "fewer CPUs than online is warned about, naming rep 3" warn_has "fewer CPUs available" "$sid rep 3"
check "a run shorter than the rule is warned about, naming rep 4" warn_has "shorter than the run-length rule" "$sid rep 4"
check "an unoptimised build is warned about, naming rep 5" warn_has "not an optimised build" "$sid rep 5"
check "quiet runs are not named in the steal warning" sh -c "! grep 'steal above' '$rep' | grep -q -e 'rep 2' -e 'primes'"
check "the conditions give the noise ranges" has "$rep" "| steal over a run (steal_pct) | 0.0..5.0% |"
exit "$fail"
