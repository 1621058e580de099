# lib_e2e.sh: helpers the tests/e2e_*.sh scripts source (not a test
# itself: tests/run.sh runs only e2e_*.sh).  The sourcing script sets
# PB (the poolbench binary), tmp (a scratch folder) and fail=0.
# shellcheck shell=sh disable=SC2154,SC2034
# (SC2154, SC2034: tmp and PB come from the sourcing script, which reads fail)

check() { # description, then a command that must succeed
    desc=$1; shift
    if "$@"; then echo "ok   $desc"; else echo "FAIL $desc"; fail=1; fi
}

inrange() { # value lo hi
    [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

field() { # json-file key[.key...] -> the value, read as JSON: strings bare,
    # numbers as written, true/false, nothing for null or a missing key.  The
    # file holds one JSON object (keep stderr out of it).
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]), parse_float=str, parse_int=str)
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
if isinstance(v, bool):
    v = str(v).lower()
print("" if v is None else v)' "$1" "$2"
}

bad() { # expected-substring, poolbench args...: exit 2 and one line naming it
    want=$1; shift
    "$PB" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" = 2 ] && [ "$lines" = 1 ] && grep -q -- "$want" "$tmp/err"; then
        echo "ok   exit 2: $*"
    else
        echo "FAIL expected exit 2 and one line with '$want' for: $* (got $rc, $lines lines)"
        cat "$tmp/err"; fail=1
    fi
}
mpi_as_root() { # Open MPI refuses root without these: the test's settings, not the user's
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
}
