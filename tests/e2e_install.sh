#!/bin/sh
# End to end: `make install` lays the library out as Debian's C libraries
# are (<poolbench/executor.h>, libexecutors.so.0 with its links beside the
# static library, a pkg-config file), the shared library exports exactly
# the ex_ functions executor.h declares, the examples build against the
# installed copy with pkg-config alone and run (map_bounded.c; fetch_hash.c
# against `poolbench serve`, its digests checked against SHA-256 of the
# bodies Python fetched, its failures reported with exit 1), as does the
# example of libexecutors(3); the README's code blocks are lines of the
# examples; the manual pages (a man3 link per ex_ function) and the bash
# completion are installed, found and rendered; and `make uninstall`
# removes every file it installed.
set -u
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
fail=0
tmp=$(mktemp -d)
spid=  # poolbench serve's pid while it runs
trap '[ -z "$spid" ] || kill "$spid"; rm -rf "$tmp"' EXIT INT TERM
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
fhflags=$(PKG_CONFIG_PATH=$p/lib/pkgconfig pkg-config --define-prefix --cflags --libs \
    poolbench-executors libcurl libcrypto)
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Wextra -Werror -o "$tmp/fetch_hash" "$root/examples/fetch_hash.c" $fhflags \
    2>"$tmp/cc.err"
check "examples/fetch_hash.c builds with pkg-config --cflags --libs poolbench-executors libcurl libcrypto" \
    [ $? = 0 ]
cat "$tmp/cc.err"

# The README shows the examples' key lines: each must be a line of its file.
readme_block() { # N: the Nth C code block of the README's library section
    awk -v n="$1" '/^## /{ sec = ($0 == "## The library: libexecutors") }
        sec && /^```c$/ { k++; inb = (k == n); next }
        inb && /^```$/ { inb = 0 } inb' "$root/README.md"
}
in_example() { # N example: every line of block N (but /* ... */) is a line of the example
    sed 's/^[[:space:]]*//; s/[[:space:]]*$//' "$root/examples/$2" >"$tmp/lines"
    readme_block "$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | grep -v '^/\* \.\.\. \*/$' >"$tmp/block"
    [ -s "$tmp/block" ] || return 1
    grep -Fxv -f "$tmp/lines" "$tmp/block" >"$tmp/missing"
    [ ! -s "$tmp/missing" ] || { sed 's/^/     not in the file: /' "$tmp/missing"; return 1; }
}
check "README's first C block ($(readme_block 1 | wc -l) lines) is lines of examples/fetch_hash.c" \
    in_example 1 fetch_hash.c
check "README's second C block ($(readme_block 2 | wc -l) lines) is lines of examples/map_bounded.c" \
    in_example 2 map_bounded.c
# fetch_hash against `poolbench serve` on an ephemeral port: the digests of
# every executor equal sha256sum of the same bodies fetched by curl, in the
# order of the URLs (Python computes the reference); a 404 and a refused connection fail with exit 1 and
# their reason on stderr, the good URLs still printed.
fetch_hash_runs() { # installed prefix
    "$PB" serve --port 0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
    spid=$!
    i=0
    while ! grep -q 'listening on http://' "$tmp/serve.out" && [ $i -lt 300 ] && kill -0 "$spid" 2>/dev/null; do
        sleep 0.1; i=$((i + 1))
    done
    base=$(sed -n 's/^poolbench serve: listening on //p' "$tmp/serve.out")
    check "poolbench serve listens (${base:-no URL after $i x 0.1 s})" [ -n "$base" ]
    urls="$base/bytes/0 $base/bytes/100 $base/?bytes=200000 $base/?bytes=3000&delay_ms=20"
    # The reference: Python's urllib and hashlib, nothing of libcurl or libcrypto.
    # shellcheck disable=SC2086
    python3 -c 'import hashlib, sys, urllib.request
for u in sys.argv[1:]:
    print("%s  %s" % (hashlib.sha256(urllib.request.urlopen(u, timeout=60).read()).hexdigest(), u))' \
        $urls >"$tmp/want" 2>"$tmp/want.err"
    check "urllib fetched the 4 bodies and hashed them for reference" \
        [ "$(grep -c '^[0-9a-f]\{64\}  ' "$tmp/want")" = 4 ]
    for kind in seq threads procs; do
        # shellcheck disable=SC2086
        LD_LIBRARY_PATH=$1/lib "$tmp/fetch_hash" -e "$kind" $urls >"$tmp/fh.$kind" 2>"$tmp/fh.err"
        check "fetch_hash on $kind: exit 0, the reference digests in URL order" \
            sh -c '[ "$1" = 0 ] && cmp -s "$2" "$3"' _ $? "$tmp/want" "$tmp/fh.$kind"
        cat "$tmp/fh.err"
    done
    LD_LIBRARY_PATH=$1/lib "$tmp/fetch_hash" -e procs "$base/status/404" "$base/bytes/100" \
        http://127.0.0.1:1/ >"$tmp/fh.bad" 2>"$tmp/fh.err"
    check "fetch_hash with a 404 and a refused connection: exit 1, both named on stderr, the good URL printed" \
        sh -c '[ "$1" = 1 ] && grep -q "status/404: HTTP status 404" "$2" && grep -q "127.0.0.1:1/: " "$2" &&
            [ "$(wc -l <"$2")" = 2 ] && [ "$(cat "$3")" = "$(sed -n 2p "$4")" ]' \
        _ $? "$tmp/fh.err" "$tmp/fh.bad" "$tmp/want"
    LD_LIBRARY_PATH=$1/lib "$tmp/fetch_hash" -e fibers "$base/bytes/1" >/dev/null 2>"$tmp/fh.err"
    check "fetch_hash -e fibers: exit 2 with its usage" sh -c '[ "$1" = 2 ] && grep -q "usage:" "$2"' _ $? "$tmp/fh.err"
    kill "$spid" && wait "$spid"
    spid=
}

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
    LD_LIBRARY_PATH=$p/lib "$tmp/squares" >"$tmp/out.squares" 2>&1
    check "libexecutors(3)'s example prints the squares of 1 to 8, in order" \
        [ "$(tr '\n' ' ' <"$tmp/out.squares")" = "1 4 9 16 25 36 49 64 " ]
    fetch_hash_runs "$p"
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
