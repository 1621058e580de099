#!/bin/sh
# exports.sh HEADER: the version script of libexecutors.so, from the public
# header: every ex_ function it declares (a name followed by "(" at the
# start of a declaration line) is exported, under the version node
# EXECUTORS_0; nothing else is.
set -eu
header=$1
names=$(sed -n 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]\(ex_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u)
[ -n "$names" ] || { echo "exports.sh: no ex_ function declared in $header" >&2; exit 1; }
echo "EXECUTORS_0 {"
echo "  global:"
for n in $names; do
    echo "    $n;"
done
echo "  local: *;"
echo "};"
