#!/bin/sh
# End to end: every JSON output of poolbench, produced here for real with
# small sizes, is valid against its schema (results/schema/, checked by
# scripts/validate_json.py): `run --json` on each executor (a fault run
# with failed tasks and a replaced worker, an open loop into a bounded
# queue that rejects, ex_map chunks, the HTTP server, Python's threads),
# overhead, transport, footprint, noise, advise and calibrate --json (one
# with a skipped measure), a
# small sweep's runs.jsonl (and its queue and transport variants),
# machine.json, scale.jsonl and peers_python.jsonl.  And the schemas bite:
# a document with a key missing, renamed, of the wrong type or outside its
# enum fails with a message naming the key; the schemas agree with
# results/README.md (tests/py/test_schema.py).
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"

validate() { # validate_json.py's arguments: exit 0, its output kept in $tmp/v.out
    "$root/scripts/py.sh" "$root/scripts/validate_json.py" "$@" >"$tmp/v.out" 2>&1
    rc=$?
    [ "$rc" = 0 ] || sed 's/^/     /' "$tmp/v.out"
    return "$rc"
}

valid() { # schema file...: each file valid against schema
    schema=$1; shift
    check "$* valid against $schema.schema.json" validate --schema "$schema" "$@"
}

runjson() { # name, poolbench run args...: the run's JSON into $tmp/run-NAME.json
    name=$1; shift
    "$PB" run --json "$@" >"$tmp/run-$name.json" 2>"$tmp/run-$name.err"
    check "run --json $* exits 0" [ $? = 0 ]
}

check "the schemas agree with results/README.md (tests/py/test_schema.py)" \
    "$root/scripts/py.sh" "$root/tests/py/test_schema.py"

# -- poolbench run --json ---------------------------------------------------
runjson seq -W primes -e seq -n 8 -p span=20000
runjson threads -W noop -e threads -w 2 -n 50
runjson shm -W sha256 -e procs -w 2 -n 8 -p bytes=4096 -p rounds=1 --transport shm --window 4
runjson fault -W fault -e procs -w 2 -n 40 -p error_rate=0.2 -p crash_rate=0.1 -p latency_ms=0
runjson rate -W sleep -e threads -w 2 -n 40 -p latency_ms=2 --rate 4000 --arrival fixed --queue 2 --on-full reject
runjson callerruns -W sleep -e threads -w 1 -n 20 -p latency_ms=1 --queue 1 --on-full caller-runs
runjson map -W noop -e procs -w 2 -n 64 --chunksize 8
runjson http -W http -e threads -w 2 -n 8 -p latency_ms=0 -p bytes=100
runjson py -W primes -e py-threads -w 2 -n 6 -p span=20000
check "the fault run failed tasks ($(field "$tmp/run-fault.json" tasks_failed)) and replaced workers" \
    sh -c '[ "$1" -gt 0 ] && [ "$2" -gt 0 ]' _ "$(field "$tmp/run-fault.json" tasks_failed)" \
    "$(field "$tmp/run-fault.json" workers_replaced)"
check "the open loop ran at a rate ($(field "$tmp/run-rate.json" arrival), $(field "$tmp/run-rate.json" offered_rate)/s) into a rejecting queue of 2" \
    [ "$(field "$tmp/run-rate.json" arrival)/$(field "$tmp/run-rate.json" offered_rate)/$(field "$tmp/run-rate.json" queue)/$(field "$tmp/run-rate.json" on_full)" = fixed/4000/2/reject ]
valid run "$tmp"/run-*.json

# -- the other commands' --json --------------------------------------------
"$PB" overhead --json -w 2 -n 2000 -c 8 --no-cpu-stats --exact-cpu >"$tmp/overhead.jsonl" 2>"$tmp/err"
check "overhead --json: exit 0, $(wc -l <"$tmp/overhead.jsonl") lines" [ $? = 0 ]
"$PB" overhead --json -e threads -w 2 -n 500 -c 0 >>"$tmp/overhead.jsonl" 2>"$tmp/err"
check "overhead --json -c 0: exit 0" [ $? = 0 ]
"$PB" transport --json -s 64,64k -r 3 >"$tmp/transport.jsonl" 2>"$tmp/err"
check "transport --json: exit 0, $(wc -l <"$tmp/transport.jsonl") lines" [ $? = 0 ]
"$PB" footprint --json -w 2 -n 2000 >"$tmp/footprint.json" 2>"$tmp/err"
check "footprint --json: exit 0" [ $? = 0 ]
"$PB" noise --json --ms 20 --label before >"$tmp/noise.jsonl" 2>"$tmp/err" &&
    "$PB" noise --json --ms 20 >>"$tmp/noise.jsonl" 2>>"$tmp/err"
check "noise --json twice: exit 0" [ $? = 0 ]
"$PB" advise -W sleep -p latency_ms=1 -n 16 -r 1 --max-workers 4 --json "$tmp/advise.json" \
    >"$tmp/advise.out" 2>&1
check "advise --json: exit 0" [ $? = 0 ]
"$PB" calibrate --quick --json "$tmp/calibrate.json" 2>"$tmp/err"
check "calibrate --quick --json: exit 0" [ $? = 0 ]
"$PB" calibrate --quick --cpus 0 --only pipe_rtt_same_pu,pipe_rtt_cross_core \
    --json "$tmp/calibrate-skip.json" 2>"$tmp/err"
check "calibrate --cpus 0: exit 0, the cross-core measure skipped" \
    sh -c '[ "$1" = 0 ] && grep -q "\"skipped\": true" "$2"' _ $? "$tmp/calibrate-skip.json"
valid overhead "$tmp/overhead.jsonl"
valid transport "$tmp/transport.jsonl"
valid footprint "$tmp/footprint.json"
valid noise "$tmp/noise.jsonl"
valid advise "$tmp/advise.json"
valid calibrate "$tmp/calibrate.json" "$tmp/calibrate-skip.json"

# -- a results folder: a sweep, machine.json, scale, peers ------------------
r=$tmp/results
sweep() { # the sweep's arguments; a small one, into $r or a folder under it
    "$PB" sweep -q --reps 2 --warmup 0 --min-rounds 2 --min-time 0 -n 12 -w 2 "$@" >"$tmp/sweep.out" 2>&1
}
sweep --out "$r" -e seq,threads,procs,py-threads -W noop,fault -p error_rate=0.2
check "sweep: exit 0" [ $? = 0 ]
sweep --out "$r/queue" -e threads -W sleep -p latency_ms=1 --queue 0,2 --on-full block,reject --rate 0,3000
check "queue sweep: exit 0" [ $? = 0 ]
sweep --out "$r/transport" -e procs -W noop --transport shm --window 4
check "transport sweep: exit 0" [ $? = 0 ]
cp "$tmp/overhead.jsonl" "$tmp/transport.jsonl" "$tmp/noise.jsonl" "$tmp/advise.json" \
    "$tmp/calibrate.json" "$r/"
"$root/scripts/py.sh" "$root/scripts/machine.py" --out "$r/machine.json" --poolbench "$PB" \
    --profile quick >"$tmp/machine.out" 2>&1
check "machine.py: exit 0" [ $? = 0 ]
"$root/scripts/py.sh" "$root/scripts/scale.py" --poolbench "$PB" --sizes 500,1000 --reps 2 \
    --out "$tmp/scale" >"$tmp/scale.out" 2>&1 && cp "$tmp/scale/scale.jsonl" "$r/"
check "scale.py: exit 0" [ $? = 0 ]
"$root/scripts/py.sh" "$root/scripts/peers/py_executors.py" --tasks 200 --workers 2 \
    >"$r/peers_python.jsonl" 2>"$tmp/err"
check "py_executors.py: exit 0" [ $? = 0 ]
check "every file of the results folder is valid (validate_json.py --dir)" validate --dir "$r"
n=$(grep -c '^ok ' "$tmp/v.out")
check "--dir found the 11 files that have a schema: runs.jsonl in 3 folders, 8 others ($n)" [ "$n" = 11 ]
check "runs.jsonl has py-seq, py-threads, seq, threads and procs rows" sh -c \
    'for e in py-seq py-threads seq threads procs; do grep -q "\"executor\":\"$e\"" "$1" || exit 1; done' _ "$r/runs.jsonl"

# -- the schemas bite ------------------------------------------------------
invalid() { # description, key the message must name, schema, file
    desc=$1 key=$2 schema=$3 file=$4
    "$root/scripts/py.sh" "$root/scripts/validate_json.py" --schema "$schema" "$file" >"$tmp/bad.out" 2>&1
    rc=$?
    if [ "$rc" = 1 ] && grep -q -- "$key" "$tmp/bad.out"; then
        echo "ok   $desc: exit 1, naming $key"
    else
        echo "FAIL $desc: expected exit 1 and a message naming $key (got $rc):"
        cat "$tmp/bad.out"; fail=1
    fi
}
corrupt() { # python expression on d (the document), input, output
    "$root/scripts/py.sh" -c 'import json, sys
d = json.loads(open(sys.argv[2]).readline())
exec(sys.argv[1])
print(json.dumps(d))' "$1" "$2" >"$3"
}
row=$r/runs.jsonl
corrupt 'del d["wall_s"]' "$row" "$tmp/c1.jsonl"
invalid "a runs row without wall_s" "'wall_s' is a required property" runs "$tmp/c1.jsonl"
corrupt 'd["tasks"] = str(d["tasks"])' "$row" "$tmp/c2.jsonl"
invalid "a runs row with tasks as a string" "/tasks: '[0-9]*' is not of type 'integer'" runs "$tmp/c2.jsonl"
corrupt 'd["tasks_okay"] = d.pop("tasks_ok")' "$row" "$tmp/c3.jsonl"
invalid "a runs row with tasks_ok renamed" "tasks_okay" runs "$tmp/c3.jsonl"
corrupt 'd["executor"] = "fibers"' "$row" "$tmp/c4.jsonl"
invalid "a runs row with an unknown executor" "/executor: 'fibers' is not one of" runs "$tmp/c4.jsonl"
corrupt 'd["tasks_failed"] = -1' "$tmp/run-fault.json" "$tmp/c5.json"
invalid "a run with -1 failed tasks" "/tasks_failed: -1 is less than the minimum of 0" run "$tmp/c5.json"
corrupt 'd["on_full"] = "drop"' "$tmp/run-rate.json" "$tmp/c6.json"
invalid "a run with on_full drop" "/on_full: 'drop' is not one of" run "$tmp/c6.json"
"$root/scripts/py.sh" -c 'import json, sys
d = json.load(open(sys.argv[1])); del d["measures"][2]["median"]; json.dump(d, sys.stdout)' \
    "$tmp/calibrate.json" >"$tmp/c7.json"
invalid "a calibrate measure without its median" "/measures/2: 'median' is a required property" calibrate "$tmp/c7.json"
{ head -n 1 "$row"; echo '{"schema_version": 6,'; } >"$tmp/c8.jsonl"
invalid "a runs.jsonl with a torn line" "c8.jsonl:2: not JSON" runs "$tmp/c8.jsonl"

"$root/scripts/py.sh" "$root/scripts/validate_json.py" --schema nosuch "$row" >"$tmp/out" 2>"$tmp/err"
check "an unknown --schema: exit 2 and a message listing the schemas" \
    sh -c '[ "$1" = 2 ] && grep -q "unknown (accepted: advise, calibrate, common, footprint" "$2"' _ $? "$tmp/err"
"$root/scripts/py.sh" "$root/scripts/validate_json.py" "$tmp/run-seq.json" >"$tmp/out" 2>"$tmp/err"
check "a file name without a schema: exit 2, asks for --schema" \
    sh -c '[ "$1" = 2 ] && grep -q "give --schema" "$2"' _ $? "$tmp/err"
exit "$fail"
