#!/bin/sh
# End to end: the manual pages and the bash completion say what the program
# and the library do, and keep saying it when they change.
#
#   - docs/man/*.[0-9]: mandoc -Tlint (style level included, cross
#     references resolved among our own pages) and groff -ww report nothing;
#   - `poolbench --help` lists every command once, with a line of text, the
#     same commands an unknown command's message accepts, and each has a
#     `poolbench CMD --help`;
#   - poolbench(1) has a subsection per command, and in it every option
#     (long and short) its --help prints, and no option it does not;
#   - poolbench(1) describes every executor name and environment variable
#     the program knows;
#   - libexecutors(3) shows every ex_ function executor.h declares
#     (scripts/exports.sh) and no other, every EX_E* status and every
#     ex_config field;
#   - completion/poolbench.bash, sourced in bash, completes the commands,
#     every option of every command, workload and executor names as
#     `poolbench list` gives them, and the value lists the program accepts
#     (as its "accepted: ..." messages say).
set -u
export LC_ALL=C
PB=${POOLBENCH:-./poolbench}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck source=tests/lib_e2e.sh
. "$here/lib_e2e.sh"
man1=$root/docs/man/poolbench.1
man3=$root/docs/man/libexecutors.3
comp=$root/completion/poolbench.bash

# ------------------------------------------------------------------ lint
# A man tree of our pages, so that their cross references resolve
# (mandoc -m); "outdated mandoc.db" lines are about the system's database.
mkdir -p "$tmp/man/man1" "$tmp/man/man3"
cp "$man1" "$tmp/man/man1/"
cp "$man3" "$tmp/man/man3/"
for page in "$man1" "$man3"; do
    name=$(basename "$page")
    mandoc -Tlint -W style -m "$tmp/man" "$page" 2>&1 | grep -v 'outdated mandoc.db' >"$tmp/lint"
    check "mandoc -Tlint $name: nothing to report" [ ! -s "$tmp/lint" ]
    sed 's/^/     /' "$tmp/lint"
    groff -ww -z -mdoc "$page" >"$tmp/groff" 2>&1
    check "groff -ww -z -mdoc $name: nothing to report" [ ! -s "$tmp/groff" ]
    sed 's/^/     /' "$tmp/groff"
done
render() { # page -> plain text, 200 columns so that no option line wraps
    mandoc -Tascii -O width=200 "$1" | col -b
}
render "$man1" >"$tmp/man1.txt"
render "$man3" >"$tmp/man3.txt"

# ------------------------------------------------------- commands, --help
"$PB" --help >"$tmp/help"
check "poolbench --help: exit 0" [ $? = 0 ]
awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print }' "$tmp/help" >"$tmp/cmdlines"
awk '{ print $1 }' "$tmp/cmdlines" >"$tmp/cmds"
commands=$(cat "$tmp/cmds")
check "poolbench --help lists commands ($(tr '\n' ' ' <"$tmp/cmds"))" [ "$(wc -l <"$tmp/cmds")" -ge 11 ]
check "each command on one line of its own, with its summary" \
    sh -c '! awk "NF < 3 || \$1 !~ /^[a-z]+\$/" "$1" | grep -q .' _ "$tmp/cmdlines"
check "no command listed twice" [ -z "$(sort "$tmp/cmds" | uniq -d)" ]
"$PB" no-such-command 2>"$tmp/unknown"
accepted=$(sed -n 's/.*(accepted: \([^;]*\);.*/\1/p' "$tmp/unknown" | tr -d ' ' | tr ',' '\n')
check "an unknown command's message accepts the commands --help lists" \
    [ "$accepted" = "$(cat "$tmp/cmds")" ]

# The option lines of a --help: "--long" and "-s" (one a line).
help_options() {
    awk '/^ +-/ { for (i = 1; i <= NF; i++) {
            t = $i; sub(/,$/, "", t)
            if (t ~ /^--?[A-Za-z][a-z0-9-]*$/) print t; else break } }' "$1" | sort -u
}
# The option tags of a command's subsection of poolbench(1).
man_section() { # command -> the subsection's text
    awk -v c="$1" '/^   [a-z]/ { on = ($0 == "   poolbench " c) ; next } /^[A-Z]/ { on = 0 } on' \
        "$tmp/man1.txt"
}
man_options() { # command -> the options its subsection's list shows
    man_section "$1" | awk '/^     -/ { for (i = 1; i <= NF; i++) {
            t = $i; sub(/,$/, "", t)
            if (t ~ /^--?[A-Za-z][a-z0-9-]*$/) print t; else break } }' | sort -u
}

for cmd in $commands; do
    "$PB" "$cmd" --help >"$tmp/h.$cmd" 2>&1
    rc=$?
    check "poolbench $cmd --help: exit 0, its usage first" \
        sh -c '[ "$1" = 0 ] && head -1 "$2" | grep -q "^usage: poolbench $3\( \|$\)"' _ "$rc" "$tmp/h.$cmd" "$cmd"
    help_options "$tmp/h.$cmd" >"$tmp/o.$cmd"
    man_section "$cmd" >"$tmp/s.$cmd"
    check "poolbench(1) has a subsection for $cmd" [ -s "$tmp/s.$cmd" ]
    man_options "$cmd" >"$tmp/m.$cmd"
    missing=$(comm -23 "$tmp/o.$cmd" "$tmp/m.$cmd" | tr '\n' ' ')
    check "poolbench(1) under $cmd: every option of its --help ($(wc -l <"$tmp/o.$cmd") options)${missing:+; missing: $missing}" \
        [ -z "$missing" ]
    extra=$(comm -13 "$tmp/o.$cmd" "$tmp/m.$cmd" | tr '\n' ' ')
    check "poolbench(1) under $cmd: no option its --help does not print${extra:+ ($extra)}" [ -z "$extra" ]
done
sections=$(sed -n 's/^   poolbench \([a-z]*\)$/\1/p' "$tmp/man1.txt" | sort)
check "poolbench(1): no subsection for a command that does not exist" \
    [ "$sections" = "$(sort "$tmp/cmds")" ]
for s in NAME SYNOPSIS DESCRIPTION COMMANDS ENVIRONMENT FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    check "poolbench(1) has the section $s" grep -qx "$s" "$tmp/man1.txt"
done
for f in runs.csv runs.jsonl summary.csv timeline.csv calibrate.json machine.json REPORT.md charts/; do
    check "poolbench(1) FILES: $f" sh -c 'sed -n "/^FILES/,/^[A-Z]/p" "$1" | grep -q -- "$2"' _ \
        "$tmp/man1.txt" "$f"
done
# Every executor the program accepts is described, and every environment
# variable it reads.
missing=""
for e in $("$PB" list --executors); do
    sed -n '/^DESCRIPTION/,/^[A-Z]/p' "$tmp/man1.txt" | grep -Eq "^     ([a-z-]+, )*$e(,|[[:space:]]|$)" ||
        missing="$missing $e"
done
check "poolbench(1) DESCRIPTION: every executor of poolbench list --executors${missing:+; missing:$missing}" \
    [ -z "$missing" ]
missing=""
envvars=$(grep -ho 'getenv("[A-Z_]*")' "$root"/harness/*.c "$root"/executors/*.c \
    "$root"/workloads/*.c "$root"/server/*.c | sed 's/getenv("\(.*\)")/\1/' | sort -u)
for v in $envvars; do
    sed -n '/^ENVIRONMENT/,/^[A-Z]/p' "$tmp/man1.txt" | grep -q "^     $v" || missing="$missing $v"
done
check "poolbench(1) ENVIRONMENT: every variable the program reads${missing:+; missing:$missing}" [ -z "$missing" ]

# EXIT STATUS: bad usage is 2, as the program does.
"$PB" run --no-such-option >/dev/null 2>&1
rc=$?
check "an unknown option exits 2, and poolbench(1) says 2 is bad usage" \
    sh -c '[ "$1" = 2 ] && sed -n "/^EXIT STATUS/,/^[A-Z]/p" "$2" | grep -A1 "^     2" | grep -q "Bad usage"' \
    _ "$rc" "$tmp/man1.txt"

# ------------------------------------------------------- libexecutors(3)
"$root/scripts/exports.sh" "$root/executors/executor.h" | sed -n 's/^ *\(ex_[a-z0-9_]*\);$/\1/p' |
    sort -u >"$tmp/funcs"
sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' "$tmp/man3.txt" | grep -o 'ex_[a-z0-9_]*(' | tr -d '(' |
    sort -u >"$tmp/synopsis"
missing=$(comm -23 "$tmp/funcs" "$tmp/synopsis" | tr '\n' ' ')
check "libexecutors(3) SYNOPSIS: every ex_ function of executor.h ($(wc -l <"$tmp/funcs"))${missing:+; missing: $missing}" \
    [ -z "$missing" ]
extra=$(comm -13 "$tmp/funcs" "$tmp/synopsis" | tr '\n' ' ')
check "libexecutors(3) SYNOPSIS: no function executor.h does not declare${extra:+ ($extra)}" [ -z "$extra" ]
undescribed=""
for f in $(tr '\n' ' ' <"$tmp/funcs"); do
    sed -n '/^DESCRIPTION/,$p' "$tmp/man3.txt" | grep -q "$f()" || undescribed="$undescribed $f"
done
check "libexecutors(3) DESCRIPTION: says what each function does${undescribed:+; not:$undescribed}" \
    [ -z "$undescribed" ]
statuses=$(sed -n 's/^ *\(EX_E[A-Z]*\) = -[0-9]*,.*/\1/p' "$root/executors/executor.h")
check "executor.h declares status codes ($(echo "$statuses" | wc -w))" [ -n "$statuses" ]
for s in $statuses; do
    check "libexecutors(3) RETURN VALUES: $s" sh -c \
        'sed -n "/^RETURN VALUES/,/^[A-Z]/p" "$1" | grep -q "^     $2"' _ "$tmp/man3.txt" "$s"
done
fields=$(sed -n '/^typedef struct ex_config {/,/^} ex_config;/p' "$root/executors/executor.h" |
    sed -n 's/^    [a-z_ ]*[ *]\([a-z_]*\);.*/\1/p; s/^    .*(\*\([a-z_]*\))(.*/\1/p')
check "ex_config has fields ($(echo "$fields" | wc -w))" [ "$(echo "$fields" | wc -w)" -ge 10 ]
for f in $fields; do
    check "libexecutors(3) CONFIGURATION: $f" sh -c \
        'sed -n "/^CONFIGURATION/,/^[A-Z]/p" "$1" | grep -qw "$2"' _ "$tmp/man3.txt" "$f"
done
check "libexecutors(3) shows the pkg-config link line" \
    grep -q 'pkg-config --cflags --libs poolbench-executors' "$tmp/man3.txt"

# ---------------------------------------------------------- completion
# complete WORDS...: COMPREPLY, one a line, for the line "poolbench WORDS"
# with the cursor on the last word (bash, the completion sourced).
complete_line() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
        _poolbench; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$PB" "$@" 2>"$tmp/comp.err"
}
words_are() { # expected words (one a line) in $1, the completion's in $2
    [ "$(sort "$1")" = "$(sort "$2")" ]
}
check "the completion is valid bash" bash -n "$comp"
check "sourcing it registers _poolbench for the poolbench command" sh -c \
    '[ "$(bash -c ". \"\$1\"; complete -p poolbench" _ "$1")" = "complete -F _poolbench poolbench" ]' _ "$comp"
complete_line r >"$tmp/c"
check "poolbench r<TAB> -> run" [ "$(cat "$tmp/c")" = run ]
complete_line "" >"$tmp/c"
missing=$(sort "$tmp/cmds" | comm -23 - "$(sort "$tmp/c" >"$tmp/cs"; echo "$tmp/cs")" | tr '\n' ' ')
check "poolbench <TAB>: every command${missing:+; missing: $missing}" [ -z "$missing" ]
for cmd in $commands; do
    complete_line "$cmd" -- | sort -u >"$tmp/c.$cmd"
    grep '^--' "$tmp/o.$cmd" >"$tmp/long.$cmd"
    missing=$(comm -23 "$tmp/long.$cmd" "$tmp/c.$cmd" | tr '\n' ' ')
    check "poolbench $cmd --<TAB>: every long option of its --help ($(wc -l <"$tmp/long.$cmd"))${missing:+; missing: $missing}" \
        [ -z "$missing" ]
    complete_line "$cmd" - | sort -u >"$tmp/cs.$cmd"
    missing=$(comm -23 "$tmp/o.$cmd" "$tmp/cs.$cmd" | tr '\n' ' ')
    check "poolbench $cmd -<TAB>: every short and long option${missing:+; missing: $missing}" [ -z "$missing" ]
done
"$PB" list --workloads >"$tmp/workloads"
check "poolbench list --workloads: the workloads of poolbench list" sh -c \
    '[ "$(cat "$1")" = "$("$2" list | sed -n "s/^\([a-z][a-z0-9-]*\)  *\(cpu\|io\)  .*/\1/p")" ]' _ \
    "$tmp/workloads" "$PB"
complete_line run -W "" >"$tmp/c"
check "poolbench run -W <TAB>: the workload names ($(wc -l <"$tmp/c"))" words_are "$tmp/workloads" "$tmp/c"
grep '^f' "$tmp/workloads" >"$tmp/f"
complete_line run --workload = f >"$tmp/c"
check "poolbench run --workload=f<TAB>, split at the = as bash does: the workloads starting with f" \
    words_are "$tmp/f" "$tmp/c"
complete_line run --workload=f >"$tmp/c"
sed 's/^/--workload=/' "$tmp/f" >"$tmp/f="
check "poolbench run --workload=f<TAB>, one word: the same, after --workload=" words_are "$tmp/f=" "$tmp/c"
"$PB" list --executors >"$tmp/executors"
check "poolbench list --executors: seq, threads and procs among them" \
    sh -c 'grep -qx seq "$1" && grep -qx threads "$1" && grep -qx procs "$1"' _ "$tmp/executors"
"$PB" run -e no-such-executor -W noop -n 1 2>"$tmp/err" >/dev/null
sed -n 's/.*(accepted: \(.*\))$/\1/p' "$tmp/err" | tr -d ' ' | tr ',' '\n' >"$tmp/acc"
check "poolbench list --executors: the names an unknown -e says are accepted" \
    words_are "$tmp/acc" "$tmp/executors"
complete_line run -e "" >"$tmp/c"
check "poolbench run -e <TAB>: the executor names ($(tr '\n' ' ' <"$tmp/c"))" words_are "$tmp/executors" "$tmp/c"
complete_line sweep --executors seq,th >"$tmp/c"
check "poolbench sweep --executors seq,th<TAB> -> seq,threads" [ "$(cat "$tmp/c")" = seq,threads ]
complete_line sweep -W primes,s >"$tmp/c"
check "poolbench sweep -W primes,s<TAB>: the second item completed" \
    sh -c 'grep -qx primes,sleep "$1" && grep -qx primes,sha256 "$1" && ! grep -qv "^primes,s" "$1"' _ "$tmp/c"
complete_line run -p latency >"$tmp/c"
check "poolbench run -p latency<TAB> -> latency_ms=" [ "$(cat "$tmp/c")" = latency_ms= ]
complete_line run -W sleep -p "" >"$tmp/c"
check "poolbench run -W sleep -p <TAB>: the keys of sleep ($(tr '\n' ' ' <"$tmp/c"))" \
    [ "$(cat "$tmp/c")" = "$("$PB" list | awk '/^sleep / { on = 1; next } /^[^ ]/ { on = 0 }
        on && /=/ { sub(/=.*/, "=", $1); print $1 }' | sort)" ]
mkdir "$tmp/outdir"
complete_line sweep --out "$tmp/outd" >"$tmp/c"
check "poolbench sweep --out <TAB>: directories" [ "$(cat "$tmp/c")" = "$tmp/outdir" ]

# The value lists written in the completion against what the program
# accepts: its message for a value it does not know lists them.
accepted_of() { # poolbench args... -> the accepted values, one a line
    "$PB" "$@" >/dev/null 2>"$tmp/err"
    sed -n 's/.*(accepted: \(.*\))$/\1/p; s/.* must be \(.*\), got .*/\1/p' "$tmp/err" |
        sed 's/ or /, /g' | tr -d ' ' | tr ',' '\n'
}
value_check() { # option, then the command that rejects the value '?'
    opt=$1; shift
    accepted_of "$@" >"$tmp/acc"
    complete_line "$1" "$opt" "" >"$tmp/c"
    check "poolbench $1 $opt <TAB>: what the program accepts ($(tr '\n' ' ' <"$tmp/acc"))" \
        sh -c '[ -s "$1" ] && [ "$(sort "$1")" = "$(sort "$2")" ]' _ "$tmp/acc" "$tmp/c"
}
value_check --transport run -W noop -n 1 --transport '?'
value_check --on-full run -W noop -n 1 --on-full '?'
value_check --arrival run -W noop -n 1 --rate 1000 --arrival '?'
value_check --pin run -W noop -n 1 --pin '?'
value_check --pin sweep -o "$tmp/sw" -W noop -e seq -w 1 -r 1 --min-time 0 -q --pin '?'
value_check --order sweep -o "$tmp/sw" -W noop -e seq -w 1 -r 1 --min-time 0 -q --order '?'
check "the completion printed nothing on stderr" [ ! -s "$tmp/comp.err" ]
exit "$fail"
