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

field() { # json-file key -> value of a top-level string or number field
    sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"
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
