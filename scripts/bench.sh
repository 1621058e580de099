#!/bin/sh
# make bench: measures this machine and writes results/<host>-<UTC time>/.
#
#   BENCH_PROFILE=quick    about 2 minutes on 2 cores
#   BENCH_PROFILE=default  (or unset) about 10-15 minutes on 2 cores
#   BENCH_PROFILE=full     all workloads, all pin policies, more repetitions
#   BENCH_OUT=DIR          write there instead of results/<host>-<time>/
#
# Steps: machine.json and the hwloc topology, calibrate, overhead, the
# transports (payload round trips), the sweeps (CPU workloads, I/O
# workloads, payload sizes, 512 concurrent HTTP requests, and the process
# pool over pipes against shared memory in transport/), advise, hyperfine's
# whole-process timings, then the charts, REPORT.md and TRANSPORT.md.  Ctrl-C stops it
# cleanly: every finished row stays in runs.csv and the HTTP server (a child
# of the sweep) goes with it.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
PB=${POOLBENCH:-$here/build/poolbench}
profile=${BENCH_PROFILE:-default}

[ -x "$PB" ] || { echo "bench: $PB is missing: run make first" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench: hyperfine is missing (make deps)" >&2; exit 1; }
scripts/py.sh -c 'import matplotlib' || exit 1

case $profile in
quick)
    cpu_wl=primes,sha256;  cpu_workers=1,2,4;       cpu_tasks=100
    io_wl=sleep,http;      io_workers=1,4,16,64;    io_tasks=64; latency=5
    payloads=64,4096,65536,1048576
    pins=none; reps=3; warmup=1; hf_runs=3; cal=--quick; conc_tasks=20480
    reps_transport=5
    ;;
default)
    cpu_wl=primes,sha256,mandelbrot,blur,compress; cpu_workers=1,2,3,4,8; cpu_tasks=80
    io_wl=sleep,http,file,fetch-hash; io_workers=1,2,4,8,16,32,64,128; io_tasks=256; latency=10
    payloads=64,1024,16384,262144,1048576,4194304
    pins=none,compact; reps=5; warmup=1; hf_runs=5; cal=; conc_tasks=51200
    reps_transport=15
    ;;
full)
    cpu_wl=primes,sha256,mandelbrot,blur,compress; cpu_workers=1-8; cpu_tasks=200
    io_wl=sleep,http,file,fetch-hash; io_workers=1-256x2; io_tasks=512; latency=10
    payloads=16,256,4096,65536,1048576,4194304,16777216
    pins=none,compact,scatter; reps=10; warmup=2; hf_runs=10; cal=; conc_tasks=102400
    reps_transport=30
    ;;
*)
    echo "bench: BENCH_PROFILE must be quick, default or full (got '$profile')" >&2
    exit 2
    ;;
esac

host=$(hostname)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${BENCH_OUT:-results/$host-$stamp}
mkdir -p "$out" || exit 1
log=$out/bench.log
t_start=$(date +%s)
step=0
nsteps=12
current=""

say() { echo "$*" | tee -a "$log" >&2; }

begin() {
    step=$((step + 1))
    current=$1
    t_step=$(date +%s)
    say "== [$step/$nsteps] $1"
}

end() {
    say "   done in $(( $(date +%s) - t_step )) s"
}

interrupted() {
    trap - INT TERM
    say ""
    say "bench: interrupted during '$current'; finished rows are kept in $out"
    exit 130
}
trap interrupted INT TERM

# Each step's own failure is reported, the bench goes on: a partial result
# set is still worth a report.
failures=0
must() {
    "$@" >>"$log" 2>&1 || { rc=$?; [ "$rc" = 130 ] && interrupted;
        say "   FAILED (status $rc): $*"; failures=$((failures + 1)); }
}

say "poolbench bench: profile $profile -> $out"

begin "machine: topology and conditions"
must "$PB" topo --xml "$out/topology.xml"
"$PB" topo >>"$log" 2>&1
must scripts/py.sh scripts/machine.py --out "$out/machine.json" \
    --topology "$out/topology.xml" --profile "$profile" --cc "${CC:-cc}" \
    --cflags "${BENCH_CFLAGS:-}" --pins "$pins" --reps "$reps" --warmup "$warmup"
end

begin "calibrate: pipe round trip, hand-off, context switch, thread and fork cost"
# shellcheck disable=SC2086
must "$PB" calibrate $cal --json "$out/calibrate.json"
end

begin "overhead: empty-task cost per executor"
must sh -c "'$PB' overhead --json --tasks 50000 > '$out/overhead.jsonl'"
end

begin "transport: payload round trips (seq, threads, procs over pipes and over shared memory)"
must sh -c "'$PB' transport --json --reps $reps_transport > '$out/transport.jsonl'"
end

sweep() { # label, then sweep arguments
    label=$1; shift
    begin "sweep: $label"
    # On a terminal the sweep draws its progress line (with ETA) on stderr;
    # otherwise its messages go to the log.
    if [ -t 2 ]; then
        "$PB" sweep --out "$out" --reps "$reps" --warmup "$warmup" "$@"
    else
        "$PB" sweep --out "$out" --reps "$reps" --warmup "$warmup" "$@" 2>>"$log"
    fi
    rc=$?
    [ "$rc" = 130 ] && interrupted
    [ "$rc" = 0 ] || { say "   sweep finished with status $rc"; failures=$((failures + 1)); }
    end
}

sweep "CPU-bound workloads ($cpu_wl)" -W "$cpu_wl" -w "$cpu_workers" -n "$cpu_tasks" --pin "$pins"
# -p applies to each listed workload that has the parameter.
io_params="-p latency_ms=$latency -p bytes=4096"
case ",$io_wl," in *,file,*) io_params="$io_params -p files=16" ;; esac
# shellcheck disable=SC2086
sweep "I/O-bound workloads ($io_wl)" -W "$io_wl" -w "$io_workers" -n "$io_tasks" $io_params
sweep "overhead against payload size (noop)" -W noop -w 2 -n 400 --vary payload_bytes="$payloads"
# 512 HTTP requests always in flight, each delayed 20 ms by the server: the
# ideal rate is 512 / 20 ms = 25600/s, and the report gives the share of it
# reached.  100 rounds of 512 (default profile): the first rounds, all 512
# requests in step and the connections being opened, run below the steady
# rate, and a short run is mostly them.  No sequential baseline: it would
# take tasks x 20 ms.
sweep "HTTP concurrency: 512 requests in flight at 20 ms" -W http -e threads -w 512 \
    -n "$conc_tasks" -p latency_ms=20 --no-baseline

# The process pool's two strategies side by side, in a folder of their
# own (procs rows over pipes and over shared memory; the main report's
# procs rows stay the default transport).
begin "transport sweep: sha256 and noop on procs over pipes and over shared memory"
for tr in pipe shm; do
    ex=seq,threads,procs; [ "$tr" = shm ] && ex=procs
    must "$PB" sweep --out "$out/transport" --reps "$reps" --warmup "$warmup" -q -e "$ex" \
        --transport "$tr" -W sha256 -w "$cpu_workers" -n "$cpu_tasks"
    must "$PB" sweep --out "$out/transport" --reps "$reps" --warmup "$warmup" -q -e "$ex" \
        --transport "$tr" -W noop -w 2 -n 64 --vary payload_bytes="$payloads"
done
end

begin "advise: Goetz's pool size against a measured check"
must "$PB" advise -W "${cpu_wl%%,*},${io_wl%%,*}" -p latency_ms="$latency" --reps 1 -n 64 \
    --json "$out/advise.json"
end

begin "hyperfine: whole-process times of poolbench run"
must hyperfine -N --warmup 1 --runs "$hf_runs" --export-json "$out/hyperfine.json" \
    -L executor seq,threads,procs -L workload "${cpu_wl%%,*},${io_wl%%,*}" \
    "$PB run -e {executor} -w 2 -W {workload} -n 40"
end

begin "charts and REPORT.md"
must scripts/py.sh scripts/plot.py "$out"
must scripts/py.sh scripts/report.py "$out"
must scripts/py.sh scripts/plot_transport.py "$out"
end

say ""
say "bench: $profile profile took $(( $(date +%s) - t_start )) s; $failures step(s) failed"
say "bench: results in $out"
[ -f "$out/REPORT.md" ] && say "bench: report: $out/REPORT.md"
[ "$failures" = 0 ]
