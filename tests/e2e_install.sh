#!/bin/sh
# End to end: `make install` lays the library out as Debian's C libraries
# are (<poolbench/executor.h>, libexecutors.so.0 with its links beside the
# static library, a pkg-config file), the shared library exports exactly
# the ex_ functions executor.h declares, an example builds against the
# installed copy with pkg-config alone and runs, and `make uninstall`
# removes every file it installed.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"

dest=$tmp/dest
prefix=/opt/pb
# The same build as the suite's (a sanitizer build passes SANITIZE down
# through MAKEFLAGS): already built, so this only copies.
make -s -C "$root" install DESTDIR="$dest" PREFIX="$prefix" >"$tmp/install.log" 2>&1
check "make install: exit 0" [ $? = 0 ]
p=$dest$prefix
for f in include/poolbench/executor.h lib/libexecutors.a lib/libexecutors.so.0.1.0 \
    lib/pkgconfig/poolbench-executors.pc bin/poolbench; do
    check "installed $f" [ -f "$p/$f" ]
done
check "libexecutors.so.0 -> libexecutors.so.0.1.0" [ "$(readlink "$p/lib/libexecutors.so.0")" = libexecutors.so.0.1.0 ]
check "libexecutors.so -> libexecutors.so.0" [ "$(readlink "$p/lib/libexecutors.so")" = libexecutors.so.0 ]
check "soname libexecutors.so.0" sh -c 'readelf -d "$1" | grep -q "SONAME.*\[libexecutors.so.0\]"' _ \
    "$p/lib/libexecutors.so.0.1.0"

# The dynamic symbols: exactly the ex_ functions the header declares.
nm -D --defined-only "$p/lib/libexecutors.so.0.1.0" | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' |
    grep -Eiv '^_*(asan|tsan|ubsan|lsan|sanitizer|odr_asan)|^EXECUTORS_0$|^_(init|fini)$' |
    sort -u >"$tmp/exported"
"$root/scripts/exports.sh" "$root/executors/executor.h" | sed -n 's/^ *\(ex_[a-z0-9_]*\);$/\1/p' |
    sort -u >"$tmp/declared"
check "the shared library exports $(wc -l <"$tmp/exported") names, exactly the $(wc -l <"$tmp/declared") ex_ functions of executor.h" \
    cmp -s "$tmp/exported" "$tmp/declared"
diff "$tmp/declared" "$tmp/exported" | sed -n 's/^[<>]/     &/p'

# An example, built with pkg-config alone against the installed copy.
pcflags=$(PKG_CONFIG_PATH=$p/lib/pkgconfig pkg-config --define-prefix --cflags --libs poolbench-executors)
check "pkg-config finds poolbench-executors in the installed tree ($pcflags)" \
    sh -c 'case "$1" in *"-I$2/include"*"-lexecutors"*) exit 0 ;; esac; exit 1' _ "$pcflags" "$p"
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Wextra -Werror -o "$tmp/map_bounded" "$root/examples/map_bounded.c" $pcflags \
    2>"$tmp/cc.err"
check "examples/map_bounded.c builds with pkg-config --cflags --libs only" [ $? = 0 ]
cat "$tmp/cc.err"
# A sanitizer build's library needs its runtime loaded first: the example
# runs against the optimized build only.
case $("$PB" --version) in
*"build: optimized)"*)
    for kind in threads procs; do
        printf 'one two three\nfour five\n\nsix\n' |
            LD_LIBRARY_PATH=$p/lib "$tmp/map_bounded" "$kind" >"$tmp/out.$kind" 2>"$tmp/err.$kind"
        check "the example runs on $kind against the installed shared library" [ $? = 0 ]
        check "the example counts 6 words in 4 lines, in order, on $kind" \
            [ "$(cat "$tmp/out.$kind")" = "$(printf '1: 3 words\n2: 2 words\n3: 0 words\n4: 1 words\n6 words in 4 lines on %s' "$kind")" ]
    done
    check "the example is linked to libexecutors.so.0" \
        sh -c 'LD_LIBRARY_PATH="$1" ldd "$2" | grep -q "libexecutors.so.0 => $1/libexecutors.so.0"' _ \
        "$p/lib" "$tmp/map_bounded"
    ;;
*) echo "ok   (sanitizer build: the example is built, not run)" ;;
esac

make -s -C "$root" uninstall DESTDIR="$dest" PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1
check "make uninstall: exit 0" [ $? = 0 ]
left=$(find "$dest" \( -type f -o -type l \) | sed "s|^$dest||")
check "make uninstall leaves no file behind (${left:-none})" [ -z "$left" ]
exit "$fail"
