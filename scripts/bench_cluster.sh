#!/bin/sh
# make bench-cluster HOSTFILE=FILE: the mpi rows across several machines.
#   scripts/bench_cluster.sh HOSTFILE
# Environment: CLUSTER_OUT=DIR (default results/cluster-<host>-<UTC time>),
# CLUSTER_REPS=3, CLUSTER_WORKLOADS=primes,noop, and the sweep's run rule:
# CLUSTER_TASKS (tasks per run), CLUSTER_MIN_ROUNDS, CLUSTER_MIN_TIME
# (seconds), each the sweep's default when unset.
# 1. the hostfile is validated (scripts/cluster_hosts.py check): missing,
#    unreadable, empty or malformed -> one message, exit 2;
# 2. machine.json: this machine (scripts/machine.py) and, under "cluster",
#    every host's facts gathered on the host itself (one process per host
#    through mpirun --hostfile);
# 3. calibrate.json: the MPI ping-pong over TCP between two ranks mapped
#    one per host (map by node: across the first two hosts);
# 4. the mpi rows: `poolbench sweep -e mpi` with the hostfile as Open MPI's
#    default (OMPI_MCA_orte_default_hostfile) and btl tcp,self; a poolbench
#    without a usable mpi executor stops here with its reason, exit 2;
# 5. REPORT.md (scripts/report.py).
# Open MPI's allow-run-as-root settings are set here, for the children.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
hostfile=${1:-}
PB=${POOLBENCH:-$here/build/poolbench}
say() { echo "bench-cluster: $*" >&2; }

counts=$(/usr/bin/python3 "$here/scripts/cluster_hosts.py" check "$hostfile") || exit 2
nhosts=${counts% *} slots=${counts#* }
[ -x "$PB" ] || { say "$PB is missing: run make first"; exit 1; }
command -v mpirun >/dev/null 2>&1 ||
    { say "Open MPI not installed (libopenmpi-dev, openmpi-bin): make deps"; exit 2; }
hostfile=$(cd "$(dirname "$hostfile")" && pwd)/$(basename "$hostfile")
pingpong=$(dirname "$(readlink -f "$PB")")/mpi_pingpong
out=${CLUSTER_OUT:-$here/results/cluster-$(hostname)-$(date -u +%Y%m%dT%H%M%SZ)}
reps=${CLUSTER_REPS:-3}
workloads=${CLUSTER_WORKLOADS:-primes,noop}
mkdir -p "$out" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_orte_default_hostfile="$hostfile" OMPI_MCA_btl=tcp,self
say "$nhosts host(s), $slots slot(s) in $hostfile -> $out"

say "[1/4] machine.json: this machine, then every host's facts"
"$PB" topo --xml "$out/topology.xml" >/dev/null 2>&1
"$here/scripts/py.sh" "$here/scripts/machine.py" --out "$out/machine.json" \
    --topology "$out/topology.xml" --profile cluster --poolbench "$PB" || exit 1
/usr/bin/python3 "$here/scripts/cluster_hosts.py" facts "$hostfile" "$out/machine.json" \
    "$(readlink -f "$PB")" "$pingpong" || say "some host did not answer (machine.json says which)"

say "[2/4] calibrate.json: the MPI ping-pong over TCP, one rank per host"
OMPI_MCA_rmaps_base_mapping_policy=node "$PB" calibrate --reps "$reps" \
    --only mpi_rtt_8b_tcp,mpi_bw_1mib_tcp --table --json "$out/calibrate.json" || exit 1

say "[3/4] the mpi rows across the hosts"
if ! "$PB" run -e mpi -w 1 -W noop -n 1 >"$out/probe.txt" 2>&1; then
    say "this poolbench ($PB) has no usable mpi executor: $(tail -n 1 "$out/probe.txt")"
    say "(the mpi backend of issue 16 must be built in; $out keeps machine.json and calibrate.json)"
    exit 2
fi
rm -f "$out/probe.txt"
workers=$(printf '%s\n' 1 2 "$slots" | awk '$1 <= '"$slots"' && !seen[$1]++' | paste -sd, -)
# The rule's options that are set, as arguments (none when unset).
set -- ${CLUSTER_TASKS:+-n "$CLUSTER_TASKS"} ${CLUSTER_MIN_ROUNDS:+--min-rounds "$CLUSTER_MIN_ROUNDS"} \
    ${CLUSTER_MIN_TIME:+--min-time "$CLUSTER_MIN_TIME"}
"$PB" sweep --out "$out" -e mpi -w "$workers" -W "$workloads" --reps "$reps" "$@" || exit 1

say "[4/4] REPORT.md"
"$here/scripts/py.sh" "$here/scripts/report.py" "$out" || exit 1
