#!/bin/sh
# make bench-cluster's pieces (scripts/cluster_hosts.py, scripts/
# bench_cluster.sh): a missing, empty, malformed or non-regular hostfile is
# one message naming HOSTFILE and exit 2, before anything runs; on a
# one-host "cluster" (localhost slots=4) machine.json records the host's
# facts under "cluster", calibrate.json has the TCP ping-pong, and then the
# mpi rows run (runs.csv) or, with a poolbench that has no mpi executor,
# the script says so and exits 2.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
script="$here/../scripts/bench_cluster.sh"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"
PB=$(readlink -f "$PB")
export POOLBENCH="$PB"

refused() { # description, expected substring, hostfile
    CLUSTER_OUT="$tmp/never" sh "$script" "$3" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$2" "$tmp/err" &&
        [ ! -e "$tmp/never" ]; then
        echo "ok   exit 2: $1"
    else
        echo "FAIL expected exit 2 and one line with '$2' for $1 (got $rc)"; cat "$tmp/err"; fail=1
    fi
}
printf '# only a comment\n\n' >"$tmp/empty"
printf 'localhost slots=four\n' >"$tmp/bad"
printf 'localhost slots=2 extra\n' >"$tmp/bad2"
refused "no HOSTFILE" "HOSTFILE is not set" ""
refused "a missing hostfile" "does not exist" "$tmp/nope"
refused "a directory" "is not a regular file" "$tmp"
refused "an empty hostfile" "names no host" "$tmp/empty"
refused "slots=four" "line 1: 'localhost slots=four' is not 'host slots=N'" "$tmp/bad"
refused "a trailing word" "line 1: 'localhost slots=2 extra'" "$tmp/bad2"
make -s -C "$here/.." bench-cluster HOSTFILE="$tmp/empty" >/dev/null 2>"$tmp/err"
check "make bench-cluster with an empty hostfile: exit 2" [ $? = 2 ]
check "  naming it" grep -q "HOSTFILE=$tmp/empty names no host" "$tmp/err"

pingpong=$(dirname "$PB")/mpi_pingpong
if ! command -v mpirun >/dev/null 2>&1 || [ ! -x "$pingpong" ]; then
    echo "skip the one-host cluster: Open MPI or $pingpong missing (make deps; make)"
    exit "$fail"
fi
printf 'localhost slots=4\n' >"$tmp/hosts"
CLUSTER_OUT="$tmp/res" CLUSTER_REPS=1 CLUSTER_WORKLOADS=noop \
    CLUSTER_TASKS=4 CLUSTER_MIN_ROUNDS=2 CLUSTER_MIN_TIME=0 \
    sh "$script" "$tmp/hosts" >"$tmp/out" 2>"$tmp/err"
rc=$?
hosts() { python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))["cluster"]
print(c["total_slots"], " ".join("%s:%s:%s:%s" % (h.get("hostfile_name"), h.get("slots"),
      h.get("online_cpus"), h.get("poolbench_present")) for h in c["hosts"]))' "$1"; }
check "machine.json records the host, its slots, CPUs and binary" \
    [ "$(hosts "$tmp/res/machine.json")" = "4 localhost:4:$(getconf _NPROCESSORS_ONLN):True" ]
check "calibrate.json has the TCP ping-pong measured" \
    [ "$(python3 -c 'import json, sys
m = {x["name"]: x for x in json.load(open(sys.argv[1]))["measures"]}
print(m["mpi_rtt_8b_tcp"]["skipped"], m["mpi_rtt_8b_tcp"]["median"] > 0, m["mpi_rtt_8b_tcp"]["pinning"])' \
        "$tmp/res/calibrate.json")" = "False True 2 ranks on the hosts of $tmp/hosts" ]
if "$PB" run -e mpi -w 1 -W noop -n 1 >/dev/null 2>&1; then
    check "with the mpi executor: exit 0" [ "$rc" = 0 ]
    check "runs.csv has mpi rows" grep -q ',mpi,' "$tmp/res/runs.csv"
    check "  measured by CLUSTER_MIN_ROUNDS=2, CLUSTER_MIN_TIME=0" \
        [ "$(python3 -c 'import csv, sys
print(sorted({(r["min_rounds"], r["min_time_s"]) for r in csv.DictReader(open(sys.argv[1]))}))' \
            "$tmp/res/runs.csv")" = "[('2', '0')]" ]
    check "REPORT.md's MPI section points to them by config_id" \
        grep -qF "This folder's mpi rows are runs.csv's (\`make bench-cluster\`" "$tmp/res/REPORT.md"
else
    check "without an mpi executor: exit 2" [ "$rc" = 2 ]
    check "  saying so" grep -q "has no usable mpi executor" "$tmp/err"
fi
[ "$fail" = 0 ] || cat "$tmp/err"
exit "$fail"
