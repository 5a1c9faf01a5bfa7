#!/usr/bin/env bash
# Counts the page faults of `uexec run --once` and of bench/gorun, the Go
# launcher's floor, by where they fall: the Go binary's own file pages
# (text, rodata, pclntab; data and bss: a fault maps its 64 KiB fault-around
# window of file pages), its Go heap (stacks of goroutines included), its
# other anonymous memory (thread stacks, the runtime's metadata) and the
# program's. Counts are steady where times drift (this machine: ±15% within
# an hour), and bench/faultcost.c gives what one costs here (README,
# Benchmarks: where the time of one exec goes). Needs perf (linux-perf);
# RUNS runs of each, their mean per run printed.
#
#   bench/faults.sh            # RUNS=20, a static C program
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}

command -v perf >/dev/null || apt-get install -y -q linux-perf >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/uexec.built" ./cmd/uexec
go build -o "$work/gorun.built" ./bench/gorun
# cp copies, as bench/run.sh runs (a binary the linker wrote sits in the
# page cache in other folios, and its faults cost more).
cp "$work/uexec.built" "$work/uexec"
cp "$work/gorun.built" "$work/gorun"
printf 'int main(void){return 0;}\n' >"$work/t.c"
gcc -O2 -static -o "$work/static" "$work/t.c"

count() { # NAME CMD...: perf's fault records of RUNS runs of CMD, classified
	local name=$1
	shift
	for i in $(seq "$runs"); do
		perf record -q -e page-faults -c 1 -d -o "$work/pf.data" "$@" >/dev/null 2>&1
		perf script -i "$work/pf.data" -F comm,addr 2>/dev/null
	done | python3 -c '
import sys, collections
name, runs, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = collections.Counter()
for line in sys.stdin:
    f = line.split()
    if len(f) < 2:
        continue
    comm, addr = f[0], int(f[1], 16)
    if not binary.startswith(comm):  # perf keeps 15 bytes of comm
        c["the program, the stub"] += 1
    elif addr < 1 << 32:
        c["Go binary: file pages, data, bss"] += 1
    elif addr < 0x7f0000000000:
        c["Go heap"] += 1
    else:
        c["Go: other anonymous, stacks"] += 1
print("%-36s" % name, "  ".join("%s %.0f" % (k, v / runs) for k, v in sorted(c.items())), " all %.0f" % (sum(c.values()) / runs))
' "$name" "$runs" "$(basename "$1")"
}
count "gorun STATIC" "$work/gorun" "$work/static"
count "uexec run --once STATIC" "$work/uexec" run --once "$work/static"
count "uexec help" "$work/uexec" help
