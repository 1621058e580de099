#!/bin/sh
# The mpi executor across two hosts, on one machine: the second host is a
# network namespace with its own address (a veth pair on a private /24)
# and its own host name (a UTS namespace), reached by Open MPI through a
# launch agent that stands in for ssh (plm_rsh_agent).  It checks what a
# cluster adds to loopback: the workers really run on the other host,
# their lifelines connect back over the network to this host's name, a
# crash or a hang there fails the pending tasks (EX_EBROKEN / EX_ETIMEDOUT)
# and leaves nothing on either host, in both starts (spawn with
# POOLBENCH_MPI_HOSTS, and mpirun -n 3 --map-by node); and make
# bench-cluster's script records both hosts in machine.json and measures
# across them.
# Skipped (exit 77, counted) without the mpi executor, in a sanitizer
# build, without root, mpirun, ip or unshare, or where network namespaces
# cannot be made.  Everything it creates (namespace, veth, /etc/netns/NS)
# is removed on exit.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
fail=0
tmp=$(mktemp -d)
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"
# The real path: processes are found by /proc/PID/exe, which names the
# binary, not a symlink to it (./poolbench is one).
PB=$(readlink -f "$PB")

skip() { echo "skipped: $*"; rm -rf "$tmp"; exit 77; }
"$PB" list | grep -q '^mpi executor (-e mpi): available' ||
    skip "this build has no mpi executor ($("$PB" list | grep '^mpi executor'))"
case $("$PB" --version) in
*"build: optimized)"*) ;;
*) skip "a sanitizer build: Open MPI's processes would fail under it" ;;
esac
[ "$(id -u)" = 0 ] || skip "not root: network namespaces need it"
for tool in mpirun ip unshare; do
    command -v "$tool" >/dev/null 2>&1 || skip "no $tool on PATH"
done

# Names and a subnet of this run's own (the pid), so that runs never clash.
ns=pbh$$
node=pbnode$$
host=$(hostname)
net=10.$(($$ / 250 % 250 + 1)).$(($$ % 250))
veth_a=pbh$$a veth_b=pbh$$b
cleanup() {
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    ip link del "$veth_a" 2>/dev/null
    rm -rf "/etc/netns/$ns" "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ip netns add "$ns" 2>"$tmp/ns.err" || skip "cannot make a network namespace: $(cat "$tmp/ns.err")"
{
    ip link add "$veth_a" type veth peer name "$veth_b" &&
        ip link set "$veth_b" netns "$ns" &&
        ip addr add "$net.1/24" dev "$veth_a" && ip link set "$veth_a" up &&
        ip netns exec "$ns" ip addr add "$net.2/24" dev "$veth_b" &&
        ip netns exec "$ns" ip link set "$veth_b" up &&
        ip netns exec "$ns" ip link set lo up
} 2>"$tmp/ns.err" || skip "cannot link the namespace: $(cat "$tmp/ns.err")"
# The other host resolves this one's name to its address on the veth.
mkdir -p "/etc/netns/$ns"
printf '127.0.0.1 localhost\n%s.1 %s\n%s.2 %s\n' "$net" "$host" "$net" "$node" \
    >"/etc/netns/$ns/hosts"
cat >"$tmp/agent" <<EOF
#!/bin/sh
# Open MPI's ssh: runs the command "on" host \$1, the namespace.
h=\$1; shift
exec ip netns exec $ns unshare --uts sh -c "hostname \$h; \$*"
EOF
chmod +x "$tmp/agent"
printf '%s slots=1\n%s slots=2\n' "$host" "$node" >"$tmp/hosts"
mpi_as_root
OMPI_MCA_plm_rsh_agent=$tmp/agent OMPI_MCA_plm_rsh_no_tree_spawn=1
OMPI_MCA_oob_tcp_if_include=$net.0/24 OMPI_MCA_btl_tcp_if_include=$net.0/24
export OMPI_MCA_plm_rsh_agent OMPI_MCA_plm_rsh_no_tree_spawn OMPI_MCA_oob_tcp_if_include \
    OMPI_MCA_btl_tcp_if_include

# Open MPI sees two hosts.
timeout -k 5 60 mpirun --hostfile "$tmp/hosts" -n 3 --map-by node sh -c 'hostname' \
    >"$tmp/names" 2>&1
check "mpirun places ranks on both hosts ($(sort "$tmp/names" | uniq -c | tr -s ' \n' ' '))" \
    [ "$(grep -cx "$host" "$tmp/names") $(grep -cx "$node" "$tmp/names")" = "1 2" ]

left() { # processes of this poolbench still running in the namespace, or here
    n=0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do n=$((n + 1)); done
    for pid in $(pgrep -f "^$PB" 2>/dev/null); do n=$((n + 1)); done
    echo "$n"
}
settled() { # until nothing is left (a few seconds), then the count
    i=0
    while [ "$(left)" != 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    left
}
# The workers run on the other host: while a run of sleeping tasks lasts,
# the namespace holds this executable's processes (the workers, orted).
on_node() { # run args...: the largest number of $PB processes seen there
    "$@" >"$tmp/on.json" 2>"$tmp/on.err" &
    bg=$!
    most=0
    while kill -0 "$bg" 2>/dev/null; do
        n=0
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$PB" ] && n=$((n + 1))
        done
        [ "$n" -gt "$most" ] && most=$n
        sleep 0.05
    done
    wait "$bg"
    echo "$most"
}

"$PB" run -W primes -e threads -w 2 -n 100 --json >"$tmp/threads.json"
want=$(field "$tmp/threads.json" digest)

# 1. spawn: the broker here, its workers on the other host.
spawn() { OMPI_MCA_orte_default_hostfile=$tmp/hosts POOLBENCH_MPI_HOSTS=$node \
    timeout -k 5 120 "$PB" "$@"; }
spawn run -W primes -e mpi -w 2 -n 100 --json >"$tmp/spawn.json" 2>"$tmp/spawn.err"
check "spawn: primes across hosts: exit 0" [ $? = 0 ]
check "spawn: 100 tasks ok, threads' digest" \
    [ "$(field "$tmp/spawn.json" tasks_ok) $(field "$tmp/spawn.json" digest)" = "100 $want" ]
n=$(on_node spawn run -W sleep -p latency_ms=20 -e mpi -w 2 -n 60 --json)
check "spawn: the 2 workers ran on the other host ($n processes of poolbench there)" [ "$n" -ge 2 ]
check "  and their tasks succeeded" [ "$(field "$tmp/on.json" tasks_ok)" = 60 ]
spawn run -W fault -p crash_rate=0.2 -e mpi -w 2 -n 50 --json >"$tmp/crash.json" 2>"$tmp/crash.err"
check "spawn: a crash on the other host: exit 0" [ $? = 0 ]
check "  the pending tasks fail with EX_EBROKEN ($(field "$tmp/crash.json" errors))" \
    grep -q EX_EBROKEN "$tmp/crash.json"
check "  nothing left on either host ($(settled))" [ "$(settled)" = 0 ]
spawn run -W fault -p hang_rate=0.2 --timeout-ms 500 -e mpi -w 2 -n 50 --json \
    >"$tmp/hang.json" 2>"$tmp/hang.err"
check "spawn: a hang on the other host: exit 0" [ $? = 0 ]
check "  EX_ETIMEDOUT, then EX_EBROKEN ($(field "$tmp/hang.json" errors))" \
    grep -q EX_ETIMEDOUT "$tmp/hang.json"
check "  nothing left on either host ($(settled))" [ "$(settled)" = 0 ]

# 2. mpirun -n 3: rank 0 here (broker and application), ranks 1-2 there.
mpirun_pb() { timeout -k 5 120 mpirun --hostfile "$tmp/hosts" -n 3 --map-by node \
    --mca btl tcp,self "$PB" "$@"; }
mpirun_pb run -W primes -e mpi -n 100 --json >"$tmp/mpirun.json" 2>"$tmp/mpirun.err"
check "mpirun: primes across hosts: exit 0" [ $? = 0 ]
check "mpirun: 100 tasks ok, threads' digest" \
    [ "$(field "$tmp/mpirun.json" tasks_ok) $(field "$tmp/mpirun.json" digest)" = "100 $want" ]
n=$(on_node mpirun_pb run -W sleep -p latency_ms=20 -e mpi -n 60 --json)
check "mpirun: ranks 1 and 2 ran on the other host ($n processes of poolbench there)" [ "$n" -ge 2 ]
mpirun_pb run -W fault -p crash_rate=0.2 -e mpi -n 50 --json >"$tmp/mcrash.json" 2>"$tmp/mcrash.err"
# mpirun may return before the application, which goes on writing its
# JSON to mpirun's stdout: until it is done.
settled >/dev/null
check "mpirun: a crash on the other host: the application counts it" \
    grep -q EX_EBROKEN "$tmp/mcrash.json"
check "  nothing left on either host ($(settled))" [ "$(settled)" = 0 ]

# 3. make bench-cluster's script over the two hosts, in small.
CLUSTER_OUT="$tmp/cluster" CLUSTER_REPS=1 CLUSTER_WORKLOADS=noop \
    CLUSTER_TASKS=50 CLUSTER_MIN_ROUNDS=2 CLUSTER_MIN_TIME=0 \
    POOLBENCH="$PB" timeout -k 5 300 sh "$here/../scripts/bench_cluster.sh" "$tmp/hosts" \
    >"$tmp/cluster.log" 2>&1
check "bench-cluster across the two hosts: exit 0" [ $? = 0 ] || tail -n 20 "$tmp/cluster.log"
hosts=$(/usr/bin/python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))["cluster"]["hosts"]
print(" ".join(sorted(h["host"] for h in c if h.get("poolbench_present"))))' \
    "$tmp/cluster/machine.json" 2>/dev/null)
check "  machine.json's cluster: both hosts, each with poolbench ($hosts)" \
    [ "$hosts" = "$(printf '%s\n%s\n' "$host" "$node" | sort | tr '\n' ' ' | sed 's/ $//')" ]
check "  runs.csv has the mpi rows" grep -q '|mpi|' "$tmp/cluster/runs.csv"
check "  nothing left on either host ($(settled))" [ "$(settled)" = 0 ]
exit "$fail"
