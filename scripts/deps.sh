#!/bin/sh
# Installs the Debian packages poolbench needs, only those missing.
# Idempotent: a machine that has them all does nothing and prints nothing.
set -eu
PKGS="build-essential pkg-config libhwloc-dev hwloc libcurl4-openssl-dev libmicrohttpd-dev
libcmocka-dev zlib1g-dev libssl-dev libjansson-dev hyperfine python3-matplotlib python3-scipy clang valgrind
stress-ng shellcheck cppcheck pyflakes3 mandoc python3-jsonschema python3-markdown chromium
libopenmpi-dev openmpi-bin python3-mpi4py iproute2"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "poolbench: missing Debian packages:$missing" >&2
    echo "poolbench: run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "poolbench: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
