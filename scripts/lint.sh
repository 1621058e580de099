#!/bin/sh
# make lint: the static checks CI runs, each fixed to zero findings.
#
#   - every shell script through shellcheck (its settings and the two
#     checks it skips, with the reason, are in .shellcheckrc);
#   - every C file through cppcheck, with the warning, portability and
#     performance checks: the classes that find defects (uninitialised reads, leaks on
#     realloc failure, wrong printf types, undefined shifts); style is left
#     to review;
#   - every Python file through pyflakes: undefined names, unused imports
#     and variables, redefinitions.
#
# Exits 1 when a checker found something, 2 when a checker is missing.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 2

for tool in shellcheck cppcheck pyflakes3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "lint: $tool is missing (make deps installs it)" >&2
        exit 2
    }
done

status=0
run() { # name, then the command
    name=$1; shift
    if "$@"; then
        echo "lint: $name clean"
    else
        echo "lint: $name found problems (above)"
        status=1
    fi
}

# Shell scripts are the *.sh files, the bash completion and the
# extension-less CI entry point.
sh_files=$(find scripts tests .ci completion -type f \( -name '*.sh' -o -name '*.bash' -o -path .ci/run \) | sort)
# shellcheck disable=SC2086  # one file name per word, none has a space
run shellcheck shellcheck -f gcc $sh_files

run cppcheck cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
    --enable=warning,portability,performance --suppress=missingIncludeSystem \
    -D__linux__ -D_GNU_SOURCE -Iexecutors -Iworkloads -Iserver -Iharness -Itests \
    executors workloads server harness tests fuzz scripts/peers examples tools

py_files=$(find scripts tests -type f -name '*.py' | sort)
# shellcheck disable=SC2086
run pyflakes pyflakes3 $py_files

exit "$status"
