#!/bin/sh
# End to end: `make install` lays the library out as Debian's C libraries
# are (<poolbench/executor.h>, libexecutors.so.0 with its links beside the
# static library, a pkg-config file), the shared library exports exactly
# the ex_ functions executor.h declares, an example builds against the
# installed copy with pkg-config alone and runs, as does the example of
# libexecutors(3); the manual pages (a man3 link per ex_ function) and the
# bash completion are installed, found and rendered; and `make uninstall`
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

# The manual pages and the completion, where Debian puts them; a man3
# page per ex_ function, a .so link to libexecutors(3).
for f in share/man/man1/poolbench.1 share/man/man3/libexecutors.3 \
    share/bash-completion/completions/poolbench; do
    check "installed $f" [ -f "$p/$f" ]
done
nfuncs=0
nlinks=0
for fn in $("$root/scripts/exports.sh" "$root/executors/executor.h" | sed -n 's/^ *\(ex_[a-z0-9_]*\);$/\1/p'); do
    nfuncs=$((nfuncs + 1))
    [ "$(cat "$p/share/man/man3/$fn.3" 2>/dev/null)" = ".so man3/libexecutors.3" ] && nlinks=$((nlinks + 1))
done
check "a man3 page links each of the $nfuncs ex_ functions to libexecutors(3) ($nlinks)" \
    sh -c '[ "$1" -gt 0 ] && [ "$1" = "$2" ]' _ "$nfuncs" "$nlinks"
check "man finds ex_submit(3) in the installed tree, as libexecutors(3)" sh -c \
    'MANPATH="$1" MANWIDTH=80 man -P cat ex_submit 2>/dev/null | grep -q "^LIBEXECUTORS(3)"' _ "$p/share/man"
check "man -l renders the installed poolbench(1) without a warning" sh -c \
    'MANWIDTH=80 man -P cat -l "$1" 2>"$2" | grep -q "^POOLBENCH(1)" && [ ! -s "$2" ]' _ \
    "$p/share/man/man1/poolbench.1" "$tmp/man.err"
check "mandoc renders the installed libexecutors(3)" sh -c \
    'mandoc -Tascii "$1" | col -b | grep -q "^LIBEXECUTORS(3)"' _ "$p/share/man/man3/libexecutors.3"
check "the installed completion loads in bash and completes poolbench r<TAB> to run" sh -c \
    'bash -c ". \"\$1\"; COMP_WORDS=(\"\$2\" r); COMP_CWORD=1; _poolbench; [ \"\${COMPREPLY[*]}\" = run ]" _ "$1" "$2"' \
    _ "$p/share/bash-completion/completions/poolbench" "$PB"

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
# The program of libexecutors(3)'s EXAMPLES, as the installed page shows it.
mandoc -Tascii "$p/share/man/man3/libexecutors.3" | col -b |
    awk '/^EXAMPLES/ { ex = 1 } ex && /#include <poolbench\/executor.h>/ { on = 1 }
        /Build it with/ { on = 0 } on' >"$tmp/squares.c"
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Wextra -Werror -o "$tmp/squares" "$tmp/squares.c" $pcflags 2>"$tmp/cc.err"
check "libexecutors(3)'s example ($(wc -l <"$tmp/squares.c") lines) builds with pkg-config only" [ $? = 0 ]
cat "$tmp/cc.err"
# A sanitizer build's library needs its runtime loaded first: the examples
# run against the optimized build only.
case $("$PB" --version) in
*"build: optimized)"*)
    for kind in threads procs; do
        printf 'one two three\nfour five\n\nsix\n' |
            LD_LIBRARY_PATH=$p/lib "$tmp/map_bounded" "$kind" >"$tmp/out.$kind" 2>"$tmp/err.$kind"
        check "the example runs on $kind against the installed shared library" [ $? = 0 ]
        check "the example counts 6 words in 4 lines, in order, on $kind" \
            [ "$(cat "$tmp/out.$kind")" = "$(printf '1: 3 words\n2: 2 words\n3: 0 words\n4: 1 words\n6 words in 4 lines on %s' "$kind")" ]
    done
    LD_LIBRARY_PATH=$p/lib "$tmp/squares" >"$tmp/out.squares" 2>&1
    check "libexecutors(3)'s example prints the squares of 1 to 8, in order" \
        [ "$(tr '\n' ' ' <"$tmp/out.squares")" = "1 4 9 16 25 36 49 64 " ]
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
