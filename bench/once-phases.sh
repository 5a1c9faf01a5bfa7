#!/usr/bin/env bash
# The phases of `uexec run --once /bin/true` and of bench/gorun running
# /bin/true, by a kernel trace (tracefs: execve's entry and exit,
# exit_group, forks, and the stub's last munmap, of 512 MiB or more): N
# runs of each, in turns; prints each phase's median (README, Benchmarks).
# Root only; tracing slows every system call a little, uexec's more, as it
# makes more.
#
#   bench/once-phases.sh [N]      # N=300
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
T=/sys/kernel/tracing
[ -w "$T/trace" ] || { echo "once-phases.sh: needs root and tracefs at $T" >&2; exit 1; }
events="syscalls/sys_enter_execve syscalls/sys_exit_execve syscalls/sys_enter_exit_group sched/sched_process_fork syscalls/sys_enter_munmap"
for e in $events; do
	[ -e "$T/events/$e/enable" ] || { echo "once-phases.sh: this kernel has no tracepoint $e" >&2; exit 1; }
done
work=$(mktemp -d)
size=$(cat "$T/buffer_size_kb")
off() { # also after a failure half-way: each step on its own
	echo 0 >"$T/tracing_on"
	for e in $events; do echo 0 2>/dev/null >"$T/events/$e/enable" || true; done
	echo 0 2>/dev/null >"$T/events/syscalls/sys_enter_munmap/filter" || true
	echo >"$T/trace"
	echo "$size" >"$T/buffer_size_kb"
	rm -rf "$work"
}
trap off EXIT
# Copies, not the linker's output, as bench/run.sh runs (README: how a
# binary was written moves its start).
go build -o "$work/uexec.built" ./cmd/uexec
go build -o "$work/gorun.built" ./bench/gorun
cp "$work/uexec.built" "$work/uexec"
cp "$work/gorun.built" "$work/gorun"
echo 0 >"$T/tracing_on"
echo >"$T/trace"
echo 16384 >"$T/buffer_size_kb"
echo 'len >= 0x20000000' >"$T/events/syscalls/sys_enter_munmap/filter"
for e in $events; do echo 1 >"$T/events/$e/enable"; done
echo 1 >"$T/tracing_on"
for _ in $(seq "$n"); do
	"$work/uexec" run --once /bin/true
	"$work/gorun" /bin/true
done
echo 0 >"$T/tracing_on"
cat "$T/trace" >"$work/trace"
python3 - "$work/trace" <<'PY'
import re, statistics, sys
from collections import defaultdict
by = defaultdict(list)  # pid -> [(µs, event, rest)]
for line in open(sys.argv[1]):
    m = re.match(r'\s*.+?-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+)(.*)', line)
    if m:
        by[int(m.group(1))].append((float(m.group(2)) * 1e6, m.group(3), m.group(4)))
uexec, gorun = defaultdict(list), defaultdict(list)
for pid, es in by.items():
    ex = [t for t, n, _ in es if n == 'sys_execve']
    exit_ = [t for t, n, _ in es if n == 'sys_exit_group']
    if not exit_:
        continue
    if len(ex) == 4:  # uexec: its own exec, then the stub's
        last = [t for t, n, _ in es if n == 'sys_munmap' and t > ex[3]]
        if not last:
            continue
        for k, v in (("the kernel's exec of uexec", ex[1] - ex[0]), ('runtime, packages, main', ex[2] - ex[1]),
                     ('execve of the stub from Go', ex[3] - ex[2]), ("the stub's build", last[0] - ex[3]),
                     ('the program', exit_[0] - last[0]), ('in all', exit_[0] - ex[0])):
            uexec[k].append(v)
    elif len(ex) == 2:  # gorun, with a child that execs
        for t, n, rest in es:
            kid = re.search(r'child_pid=(\d+)', rest) if n == 'sched_process_fork' else None
            if not kid:
                continue
            k = by.get(int(kid.group(1)), [])
            kex = [t2 for t2, n2, _ in k if n2 == 'sys_execve']
            kexit = [t2 for t2, n2, _ in k if n2 == 'sys_exit_group']
            if len(kex) == 2 and kexit:
                for name, v in (("the kernel's exec of gorun", ex[1] - ex[0]), ('runtime, packages, main to the fork', t - ex[1]),
                                ('fork and exec of the program', kex[1] - t), ('the program', kexit[0] - kex[1]),
                                ('its wait and exit', exit_[0] - kexit[0]), ('in all', exit_[0] - ex[0])):
                    gorun[name].append(v)
                break
for title, d in (('uexec run --once /bin/true', uexec), ('bench/gorun /bin/true', gorun)):
    print(title)
    for k, v in d.items():
        print('  %-38s %6.0f us  (n=%d)' % (k, statistics.median(v), len(v)))
PY
