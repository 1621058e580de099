#!/bin/sh
# The names libexecutors.a exports: only the public prefix `ex_` and the
# internal prefix `ex__` (as libuv's uv_ / uv__), and every `ex_` name is
# declared in the public header executors/executor.h.  Whatever a file of
# executors/ shares with another but not with the user is `ex__`-prefixed,
# so that it cannot clash with an application's symbols.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
lib=$(dirname "$PB")/libexecutors.a
header="$here/../executors/executor.h"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"

[ -f "$lib" ] || { echo "FAIL no library at $lib"; exit 1; }
# Global defined symbols; what a sanitizer build adds is not ours.
nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' |
    grep -Eiv '^_*(asan|tsan|ubsan|lsan|sanitizer|odr_asan)' | sort -u >"$tmp/all"
check "the library exports symbols ($(wc -l <"$tmp/all"))" [ -s "$tmp/all" ]

grep -v '^ex_' "$tmp/all" >"$tmp/foreign"
check "every exported name starts with ex_ or ex__" [ ! -s "$tmp/foreign" ]
sed 's/^/     not ex_: /' "$tmp/foreign"

grep '^ex_' "$tmp/all" | grep -v '^ex__' >"$tmp/public"
: >"$tmp/undeclared"
while read -r name; do
    grep -Eq "[^A-Za-z0-9_]${name}[[:space:]]*\\(" "$header" || echo "$name" >>"$tmp/undeclared"
done <"$tmp/public"
check "every ex_ name ($(wc -l <"$tmp/public")) is declared in executor.h" [ ! -s "$tmp/undeclared" ]
sed 's/^/     internal, needs ex__: /' "$tmp/undeclared"

exit "$fail"
