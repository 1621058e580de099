# shellcheck shell=bash
# bash completion for poolbench: commands, each command's options, and the
# values of the options that take names.
#
# Nothing here lists what the program may change: the commands come from
# `poolbench --help`, each command's options (and whether one takes a
# value) from `poolbench CMD --help`, the workload and executor names from
# `poolbench list --workloads` / `--executors`, the parameter keys from
# `poolbench list`, all asked of the very program being completed (the
# first word of the line: ./poolbench, build/poolbench or the installed
# one) at each TAB.  The value lists of --transport, --on-full, --arrival,
# --pin and --order are written here; tests/e2e_docs.sh checks them against
# what the program says it accepts.
#
# Installed as $(PREFIX)/share/bash-completion/completions/poolbench,
# where bash-completion loads it on first use.

# The commands, one a line, from `poolbench --help`.
_poolbench_commands()
{
    "$1" --help 2>/dev/null | awk '/^commands:/ { on = 1; next } on && /^$/ { exit }
        on && /^  [a-z]/ { print $1 }'
}

# Every option of a command, one a line: "--long ARG", "-s ARG", or "--long"
# alone when it takes no value.  From the option lines of its --help (an
# indented line that starts with a dash); ARG is the metavariable that
# follows the option (upper case: NAME, N, LIST, KEY=VALUE, FILE, ...).
_poolbench_options()
{
    "$1" "$2" --help 2>/dev/null | awk '
        /^ +-/ {
            n = split($0, w, " ")
            short = ""; long = ""; arg = ""
            for (i = 1; i <= n; i++) {
                t = w[i]
                if (t ~ /^-[A-Za-z],$/) { short = substr(t, 1, 2); continue }
                if (t ~ /^--[a-z][a-z0-9-]*$/ && long == "") { long = t; continue }
                if (long != "" && t ~ /^[A-Z]/) arg = t
                break
            }
            if (long == "") next
            print long (arg != "" ? " " arg : "")
            if (short != "") print short (arg != "" ? " " arg : "")
        }'
}

# The parameter keys ("key=") of the workloads named on the line (-W,
# --workload, --workloads: one or a comma-separated list), or of every
# workload when none is; from `poolbench list`.
_poolbench_param_keys()
{
    local names="" i
    for ((i = 2; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
        -W | --workload | --workloads) names+=",${COMP_WORDS[i + 1]}" ;;
        --workload=* | --workloads=*) names+=",${COMP_WORDS[i]#*=}" ;;
        esac
    done
    "$1" list 2>/dev/null | awk -v names="$names," '
        /^[a-z]/ { on = names == "," || index(names, "," $1 ",") > 0 }
        on && /^    [a-z_][a-z0-9_]*=/ { sub(/=.*/, "=", $1); print $1 }' | sort -u
}

# Completes the last item of the comma-separated list in $cur (the
# caller's) among the words $1, keeping the items before it.
_poolbench_list_of()
{
    local words=$1 prefix="" last=$cur
    if [[ $cur == *,* ]]; then
        prefix=${cur%,*},
        last=${cur##*,}
    fi
    local w
    COMPREPLY=()
    for w in $(compgen -W "$words" -- "$last"); do
        COMPREPLY+=("$prefix$w")
    done
    if [[ ${#COMPREPLY[@]} -gt 0 ]] && type compopt &>/dev/null; then
        compopt -o nospace 2>/dev/null
    fi
}

# The values of option $3 (metavariable $4) of command $2 of the program
# $1 that complete $cur (the caller's), into COMPREPLY.
_poolbench_values()
{
    local pb=$1 cmd=$2 opt=$3 arg=$4 list=0
    [[ $arg == LIST ]] && list=1
    local words
    case $opt in
    -W | --workload | --workloads)
        words=$("$pb" list --workloads 2>/dev/null)
        [[ $cmd == run ]] || list=1 ;;
    -e | --executor | --executors)
        words=$("$pb" list --executors 2>/dev/null)
        [[ $cmd == run ]] || list=1 ;;
    --transport) words="pipe shm" ;;
    --on-full) words="block reject caller-runs" ;;
    --arrival) words="poisson fixed" ;;
    --pin) words="none compact scatter" ;;
    --order) words="interleaved grouped" ;;
    -p | --param)
        mapfile -t COMPREPLY < <(compgen -W "$(_poolbench_param_keys "$pb")" -- "$cur")
        type compopt &>/dev/null && compopt -o nospace 2>/dev/null
        return ;;
    *)
        case $arg in
        DIR) mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        FILE) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        *) COMPREPLY=() ;;
        esac
        return ;;
    esac
    if [[ $list == 1 ]]; then
        _poolbench_list_of "$words"
    else
        mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    fi
}

_poolbench()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    local pb=${COMP_WORDS[0]}
    [[ $COMP_CWORD -gt 0 ]] && prev=${COMP_WORDS[COMP_CWORD - 1]}
    if [[ $pb == \~/* ]]; then
        pb=$HOME/${pb#"~/"}
    fi
    COMPREPLY=()
    if [[ $COMP_CWORD -eq 1 ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_poolbench_commands "$pb") --help --version" -- "$cur")
        return
    fi
    local cmd=${COMP_WORDS[1]}
    local options
    options=$(_poolbench_options "$pb" "$cmd")
    [[ -n $options ]] || return
    # --opt=value.  Bash splits it at the "=" (COMP_WORDBREAKS has it by
    # default): the words are "--opt" "=" "value", and what is completed
    # is the text after the "=".  Without that split, the word is whole
    # and each completion carries the "--opt=" before it.
    local opt="" joined=""
    if [[ $cur == = && $prev == --* ]]; then
        opt=$prev cur=""
    elif [[ $prev == = && $COMP_CWORD -ge 3 ]]; then
        opt=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        opt=${cur%%=*} cur=${cur#*=} joined=1
    fi
    if [[ -n $opt ]]; then
        local arg i
        arg=$(awk -v o="$opt" '$1 == o { print $2 }' <<<"$options")
        [[ -n $arg ]] && _poolbench_values "$pb" "$cmd" "$opt" "$arg"
        if [[ -n $joined ]]; then
            for i in "${!COMPREPLY[@]}"; do
                COMPREPLY[i]=$opt=${COMPREPLY[i]}
            done
        fi
        return
    fi
    # The value of the option before, if that option takes one.
    if [[ $prev == -* ]]; then
        local arg
        arg=$(awk -v o="$prev" '$1 == o { print $2 }' <<<"$options")
        if [[ -n $arg ]]; then
            _poolbench_values "$pb" "$cmd" "$prev" "$arg"
            return
        fi
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(awk '{ print $1 }' <<<"$options")" -- "$cur")
    fi
}

complete -F _poolbench poolbench
