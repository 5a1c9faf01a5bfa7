#!/usr/bin/env bash
# Measures `uexec run --once` against the kernel's own exec and against the
# floor of any Go launcher (bench/gorun: a minimal Go program that runs its
# arguments with os/exec), in one hyperfine run per program. Prints
# hyperfine's summaries: the ratios are what the README records.
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
go build -o "$work/uexec.built" ./cmd/uexec
go build -o "$work/gorun.built" ./bench/gorun
# Both run from copies made the same way: a binary the linker just wrote
# and one copied with cp(1) sit differently in the page cache, which moved
# an exec of the same bytes by up to 10% here (measured).
cp "$work/uexec.built" "$work/uexec"
cp "$work/gorun.built" "$work/gorun"
printf 'int main(void){return 0;}\n' >"$work/t.c"
gcc -O2 -static -o "$work/static" "$work/t.c"
gcc -O2 -o "$work/dynamic" "$work/t.c"

for prog in /bin/true "$work/static" "$work/dynamic"; do
	name=$(basename "$prog")
	hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/$name.json" \
		-n "kernel $name" "$prog" \
		-n "go os/exec $name" "$work/gorun $prog" \
		-n "uexec run --once $name" "$work/uexec run --once $prog"
	# The ratio the README records: uexec against the Go launcher's floor.
	python3 -c 'import json, sys
r = {x["command"].split()[0]: x for x in json.load(open(sys.argv[1]))["results"]}
k, g, u = (r[n]["mean"] * 1e3 for n in ("kernel", "go", "uexec"))
print("%s: kernel %.2f ms, go os/exec %.2f ms, uexec run --once %.2f ms: %.2fx go os/exec, %.1fx the kernel" % (sys.argv[2], k, g, u, u / g, u / k))' "$work/$name.json" "$name"
done
