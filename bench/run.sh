#!/usr/bin/env bash
# Measures `uexec run` against the kernel's own exec, in one run, with
# hyperfine (Debian package "hyperfine"; installed when missing and apt is
# available). Prints hyperfine's summary: the ratios are what the README
# records.
#
#   bench/run.sh            # /bin/true, a static C program, a dynamic one
#   RUNS=500 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-300}

if ! command -v hyperfine >/dev/null; then
	apt-get install -y -q hyperfine >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/uexec" ./cmd/uexec
printf 'int main(void){return 0;}\n' >"$work/t.c"
gcc -O2 -static -o "$work/static" "$work/t.c"
gcc -O2 -o "$work/dynamic" "$work/t.c"

for prog in /bin/true "$work/static" "$work/dynamic"; do
	hyperfine -N --warmup 20 --runs "$runs" \
		-n "kernel $(basename "$prog")" "$prog" \
		-n "uexec run $(basename "$prog")" "$work/uexec run --once $prog"
done
