#!/bin/sh
# bench/tree.sh: an exec-heavy workload (a shell loop starting 300 short
# programs) natively, under `uexec run` (every exec the kernel's, as the
# plan is its own: README, "Who builds an exec"), with --log-execs to a
# file (every exec planned and logged), with --build (every exec built by
# uexec's stub), under `uexec run --once` and under `strace -f -e trace=execve` (the reference
# for the cost of ptrace), in one hyperfine run; prints the ratios. Run as
# root, it also runs the loop as uid 65534 (setpriv): natively, in that
# user's tree (the kernel does its execs) and with --log-execs to a file.
# Usage: bench/tree.sh [N]   (hyperfine if installed, else a bash timing
# loop)
set -eu
n=${1:-300}
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/uexec
chmod 755 "$(dirname "$bin")" # for the ordinary user's runs
go build -o "$bin" ./cmd/uexec
loop="i=0; while [ \$i -lt $n ]; do /bin/true; i=\$((i+1)); done"
if command -v hyperfine >/dev/null; then
	json=$(dirname "$bin")/tree.json
	hyperfine -N --warmup 2 --runs 10 --export-json "$json" \
		-n native "sh -c '$loop'" \
		-n uexec-tree "$bin run sh -c '$loop'" \
		-n uexec-tree-log "$bin run --log-execs $(dirname "$bin")/root.log sh -c '$loop'" \
		-n uexec-tree-build "$bin run --build sh -c '$loop'" \
		-n uexec-once "$bin run --once sh -c '$loop'" \
		-n strace "strace -f -e trace=execve -o /dev/null sh -c '$loop'"
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print("%-16s %7.1f ms  %.2fx native" % (x["command"], x["mean"] * 1e3, x["mean"] / r[0]["mean"]))' "$json"
	if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
		# An ordinary user's tree: the kernel does every exec.
		user="setpriv --reuid 65534 --regid 65534 --clear-groups"
		logs=$(dirname "$bin")/logs
		mkdir -m 777 "$logs"
		hyperfine -N --warmup 2 --runs 10 --export-json "$json" \
			-n native-65534 "$user sh -c '$loop'" \
			-n uexec-tree-65534 "$user $bin run sh -c '$loop'" \
			-n uexec-tree-log-65534 "$user $bin run --log-execs $logs/log.json sh -c '$loop'"
		python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print("%-20s %7.1f ms  %.2fx native" % (x["command"], x["mean"] * 1e3, x["mean"] / r[0]["mean"]))' "$json"
	fi
	# The tree's own cost per exec: the same loop of a 3-instruction
	# static program (no libc, nothing but exit).
	tiny=$(dirname "$bin")/tiny
	printf '.globl _start\n_start: mov $60, %%eax\nxor %%edi, %%edi\nsyscall\n' |
		gcc -nostdlib -static -x assembler -o "$tiny" -
	tloop="i=0; while [ \$i -lt $n ]; do $tiny; i=\$((i+1)); done"
	hyperfine -N --warmup 2 --runs 10 --export-json "$json" \
		-n native-tiny "sh -c '$tloop'" -n uexec-tree-tiny "$bin run sh -c '$tloop'" \
		-n uexec-tree-build-tiny "$bin run --build sh -c '$tloop'"
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r[1:]:
    d = (x["mean"] - r[0]["mean"]) / int(sys.argv[2]) * 1e6
    print("tiny: native %.1f ms, %s %.1f ms: %.2fx, %.0f us per exec" % (r[0]["mean"] * 1e3, x["command"], x["mean"] * 1e3, x["mean"] / r[0]["mean"], d))' "$json" "$n"
else
	t() { s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
	nat=$(t sh -c "$loop"); tree=$(t "$bin" run sh -c "$loop"); st=$(t strace -f -e trace=execve -o /dev/null sh -c "$loop")
	echo "native ${nat} ms, uexec run ${tree} ms, strace ${st} ms"
	echo "ratio uexec/native: $(echo "scale=2; $tree/$nat" | bc), strace/native: $(echo "scale=2; $st/$nat" | bc)"
fi
rm -rf "$(dirname "$bin")"
