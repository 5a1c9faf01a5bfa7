#!/usr/bin/env bash
# Measures `uexec run --once` against the kernel's own exec and against the
# floor of any Go launcher (bench/gorun: a minimal Go program that runs its
# arguments with os/exec), in one hyperfine run per program. Prints
# hyperfine's summaries: the ratios are what the README records.
#
#   bench/run.sh            # /bin/true, a static C program, a dynamic one
#   RUNS=500 COPIES=3 bench/run.sh
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
# an exec of the same bytes by up to 10% here (measured); and copies made
# the same way a moment apart differ by up to 5% (where their pages sit):
# COPIES copies of each, every one measured, and their means averaged.
copies=${COPIES:-3}
for i in $(seq "$copies"); do
	cp "$work/uexec.built" "$work/uexec$i"
	cp "$work/gorun.built" "$work/gorun$i"
done
printf 'int main(void){return 0;}\n' >"$work/t.c"
gcc -O2 -static -o "$work/static" "$work/t.c"
gcc -O2 -o "$work/dynamic" "$work/t.c"

for prog in /bin/true "$work/static" "$work/dynamic"; do
	name=$(basename "$prog")
	cmds=(-n "kernel $name" "$prog")
	for i in $(seq "$copies"); do
		cmds+=(-n "go$i os/exec $name" "$work/gorun$i $prog" -n "uexec$i run --once $name" "$work/uexec$i run --once $prog")
	done
	hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/$name.json" "${cmds[@]}"
	# The ratio the README records: uexec against the Go launcher's floor,
	# each the mean of its copies' means.
	python3 -c 'import json, sys
res = json.load(open(sys.argv[1]))["results"]
mean = lambda p: sum(x["mean"] for x in res if x["command"].split()[0].rstrip("0123456789") == p) / sum(x["command"].split()[0].rstrip("0123456789") == p for x in res) * 1e3
k, g, u = mean("kernel"), mean("go"), mean("uexec")
print("%s: kernel %.2f ms, go os/exec %.2f ms, uexec run --once %.2f ms: %.2fx go os/exec, %.1fx the kernel" % (sys.argv[2], k, g, u, u / g, u / k))' "$work/$name.json" "$name"
done
