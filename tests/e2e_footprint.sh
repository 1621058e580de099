#!/bin/sh
# End to end: `poolbench footprint` measures the thread pool's memory per
# pending future and says so in JSON; bad input exits 2 with one line
# naming it.  The figure itself is checked loosely (a sanitizer's shadow
# memory adds to it): the 128-byte target is `make scale`'s to judge.
set -u
PB=${POOLBENCH:-./poolbench}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. "$(dirname "$0")/lib_e2e.sh"

check "footprint runs" sh -c "'$PB' footprint -w 2 -n 20000 --json >'$tmp/f.json'"
for key in rss_pending_bytes_per_future rss_done_bytes_per_future \
           rss_released_bytes_per_future rss_destroyed_bytes_per_future; do
    check "footprint reports $key" [ -n "$(field "$tmp/f.json" "$key")" ]
done
pending=$(field "$tmp/f.json" rss_pending_bytes_per_future | cut -d. -f1)
check "a pending future costs some memory, not kilobytes ($pending B)" inrange "$pending" 16 4096
check "footprint: tasks echoed" [ "$(field "$tmp/f.json" tasks)" = 20000 ]
check "footprint: text output" sh -c "'$PB' footprint -n 1000 | grep -q 'RSS growth per future'"

bad "--tasks" footprint -n 0
bad "--workers" footprint -w 0
bad "unknown option" footprint --bogus
bad "unexpected argument" footprint extra
bad "needs a value" footprint -n
exit $fail
