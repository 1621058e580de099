#!/bin/sh
# make bench: measures this machine and writes results/<host>-<UTC time>/.
#
#   BENCH_PROFILE=quick    about 2 minutes on 2 cores
#   BENCH_PROFILE=default  (or unset) about 10-15 minutes on 2 cores
#   BENCH_PROFILE=full     all workloads, all pin policies, more repetitions
#   BENCH_OUT=DIR          write there instead of results/<host>-<time>/
#
# Steps: machine.json and the hwloc topology, calibrate, overhead, the
# sweeps (CPU workloads, I/O workloads, payload sizes, 512 concurrent HTTP
# requests, Python's executors beside C's), advise, hyperfine's
# whole-process timings, then the charts and REPORT.md.  Ctrl-C stops it
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

# Python's default pool size, min(32, cpu + 4), is one of the measured
# sizes of the Python sweeps (the sizing-rule row of the report).
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
rule=$((ncpu + 4 < 32 ? ncpu + 4 : 32))

case $profile in
quick)
    cpu_wl=primes,sha256;  cpu_workers=1,2,4;       cpu_tasks=100
    io_wl=sleep,http;      io_workers=1,4,16,64;    io_tasks=64; latency=5
    payloads=64,4096,65536,1048576
    pins=none; reps=3; warmup=1; hf_runs=3; cal=--quick; conc_tasks=20480
    py_cpu_wl=mandelbrot; py_cpu_workers=1,2; py_cpu_tasks=16
    py_io_wl=sleep; py_io_workers=1,4; py_io_tasks=32; py_noop_tasks=1000; py_peer_tasks=2000
    ;;
default)
    cpu_wl=primes,sha256,mandelbrot,blur,compress; cpu_workers=1,2,3,4,8; cpu_tasks=80
    io_wl=sleep,http,file,fetch-hash; io_workers=1,2,4,8,16,32,64,128; io_tasks=256; latency=10
    payloads=64,1024,16384,262144,1048576,4194304
    pins=none,compact; reps=5; warmup=1; hf_runs=5; cal=; conc_tasks=51200
    py_cpu_wl=mandelbrot,sha256,table,mix; py_cpu_workers="1,2,$rule"; py_cpu_tasks=24
    py_io_wl=sleep,http; py_io_workers="1,4,$rule,16"; py_io_tasks=96; py_noop_tasks=4000
    py_peer_tasks=20000
    ;;
full)
    cpu_wl=primes,sha256,mandelbrot,blur,compress; cpu_workers=1-8; cpu_tasks=200
    io_wl=sleep,http,file,fetch-hash; io_workers=1-256x2; io_tasks=512; latency=10
    payloads=16,256,4096,65536,1048576,4194304,16777216
    pins=none,compact,scatter; reps=10; warmup=2; hf_runs=10; cal=; conc_tasks=102400
    py_cpu_wl=mandelbrot,sha256,primes,compress,table,mix; py_cpu_workers="1-4,$rule,8"; py_cpu_tasks=72
    py_io_wl=sleep,http,file; py_io_workers="1,2,4,$rule,16,32,64,128"; py_io_tasks=256
    py_noop_tasks=10000; py_peer_tasks=50000
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
nsteps=14
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

# Python's executors beside C's on the same inputs (the same digests): the
# report's "Threads or processes, in C and in Python" table.  Parameters
# differ from the sweeps above (smaller tiles and buffers,
# 16-byte payloads, 3 ms latency), so that these configurations stay apart from theirs.
py_params() { # workload list -> the -p options of the Python sweeps that apply
    p=""
    case ",$1," in *,mandelbrot,*) p="$p -p tile=32 -p max_iter=500" ;; esac
    case ",$1," in *,sha256,* | *,compress,*) p="$p -p bytes=65536" ;; esac
    case ",$1," in *,primes,* | *,mix,*) p="$p -p span=150000" ;; esac
    case ",$1," in *,sleep,* | *,http,*) p="$p -p latency_ms=3" ;; esac
    case ",$1," in *,http,* | *,file,*) p="$p -p bytes=4096" ;; esac
    case ",$1," in *,file,*) p="$p -p files=8" ;; esac
    case ",$1," in *,table,*) p="$p -p table_mb=4 -p lookups=20000" ;; esac
    # mix runs with the CPU workloads (none of them has latency_ms)
    case ",$1," in *,mix,*) p="$p -p latency_ms=10 -p block_rate=0.5" ;; esac
    echo "$p"
}
all_ex=seq,threads,procs,py-seq,py-threads,py-procs
# shellcheck disable=SC2046
sweep "Python beside C, CPU-bound ($py_cpu_wl)" -W "$py_cpu_wl" -e "$all_ex" -w "$py_cpu_workers" \
    -n "$py_cpu_tasks" $(py_params "$py_cpu_wl")
# shellcheck disable=SC2046
sweep "Python beside C, I/O-bound ($py_io_wl)" -W "$py_io_wl" -e "$all_ex" -w "$py_io_workers" \
    -n "$py_io_tasks" $(py_params "$py_io_wl")
sweep "Python beside C, empty tasks (noop)" -W noop -e "$all_ex" -w 2 -n "$py_noop_tasks" \
    -p payload_bytes=16

begin "python peers: one empty task in flight on ThreadPoolExecutor and ProcessPoolExecutor"
must sh -c "scripts/py.sh scripts/peers/py_executors.py --tasks $py_peer_tasks --workers 2 \
    > '$out/peers_python.jsonl'"
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
end

say ""
say "bench: $profile profile took $(( $(date +%s) - t_start )) s; $failures step(s) failed"
say "bench: results in $out"
[ -f "$out/REPORT.md" ] && say "bench: report: $out/REPORT.md"
[ "$failures" = 0 ]
