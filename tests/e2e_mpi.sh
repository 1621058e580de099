#!/bin/sh
# End to end: `poolbench run -e mpi` (issue 16) computes what the thread
# pool computes (the same digest on primes), runs the empty task, records
# its Open MPI transport (--mpi-btl tcp / sm: transport mpi-tcp / mpi-sm
# in the JSON), leaves no process behind, and refuses a bad --mpi-btl with
# one line and exit 2.  Without Open MPI, `list` and `run -e mpi` say it is
# unavailable (exit 2, one line).  Skipped (exit 77, counted as skipped)
# in a sanitizer build: Open MPI's own leaks and threads would fail the
# broker and workers there.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"
# Open MPI refuses root without these: the test's settings, not the user's.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM

bad "unknown --mpi-btl 'udp' (accepted: tcp, sm)" run -W noop -e mpi --mpi-btl udp
bad "--mpi-btl needs --executor mpi" run -W noop -e threads --mpi-btl tcp

if ! "$PB" list | grep -q '^mpi executor (-e mpi): available'; then
    # Only a build made without it (make HAVE_MPI=0: build*/nompi/) may lack
    # it where pkg-config finds Open MPI.
    case $PB in
    */nompi/*) ;;
    *) check "the mpi executor is built where pkg-config finds ompi-c" \
        sh -c '! pkg-config --exists ompi-c' ;;
    esac
    check "list says why the mpi executor is unavailable" \
        sh -c '"$1" list | grep -q "^mpi executor (-e mpi): unavailable: built without Open MPI"' _ "$PB"
    bad "the mpi executor is unavailable: built without Open MPI" run -W noop -e mpi
    exit "$fail"
fi
case $("$PB" --version) in
*"build: optimized)"*) ;;
*)
    echo "skipped: a sanitizer build ($("$PB" --version)): Open MPI's processes would fail under it"
    exit 77
    ;;
esac

"$PB" run -W primes -e threads -w 2 -n 200 --json >"$tmp/threads.json"
check "primes on threads: exit 0" [ $? = 0 ]
"$PB" run -W primes -e mpi -w 2 -n 200 --json >"$tmp/mpi.json" 2>"$tmp/mpi.err"
check "primes on mpi: exit 0" [ $? = 0 ]
cat "$tmp/mpi.err"
check "primes: mpi's digest is threads' ($(field "$tmp/mpi.json" digest))" \
    [ "$(field "$tmp/mpi.json" digest)" = "$(field "$tmp/threads.json" digest)" ]
check "primes on mpi: 200 tasks ok" [ "$(field "$tmp/mpi.json" tasks_ok)" = 200 ]
for btl in tcp sm; do
    "$PB" run -W noop -e mpi --mpi-btl "$btl" -w 2 -n 500 --json >"$tmp/noop.$btl.json" \
        2>"$tmp/noop.$btl.err"
    check "noop on mpi --mpi-btl $btl: exit 0" [ $? = 0 ]
    cat "$tmp/noop.$btl.err"
    check "noop on mpi --mpi-btl $btl: transport mpi-$btl" \
        [ "$(field "$tmp/noop.$btl.json" transport)" = "mpi-$btl" ]
    check "noop on mpi --mpi-btl $btl: 500 tasks ok" [ "$(field "$tmp/noop.$btl.json" tasks_ok)" = 500 ]
done
OMPI_MCA_btl=tcp,self "$PB" run -W noop -e mpi -w 2 -n 50 --json >"$tmp/env.json" 2>/dev/null
check "without --mpi-btl the transport follows OMPI_MCA_btl=tcp,self: mpi-tcp" \
    [ "$(field "$tmp/env.json" transport)" = mpi-tcp ]
"$PB" run -W noop -e mpi -w 2 -n 50 >"$tmp/summary" 2>&1
check "the summary names the mpi executor" grep -q '^executor    mpi, 2 workers' "$tmp/summary"
# The broker (argv[0] poolbench-mpi-broker) reaps orted and the workers
# (argv[1] --poolbench-mpi-worker=...) before it exits: none is left.
left=$(pgrep -f -- 'poolbench-mpi-broker|--poolbench-mpi-worker=' | wc -l)
check "no broker or MPI worker of poolbench left ($left)" [ "$left" = 0 ]
exit "$fail"
