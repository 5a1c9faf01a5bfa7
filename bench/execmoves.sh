#!/bin/sh
# bench/execmoves.sh CMD [ARG]...: runs CMD once under a tracefs trace
# (sched_process_exec, sched_migrate_task, sched_switch; as root) and
# prints how many execs it made, how many times a process of its tree
# (comm sh or true) was moved to another CPU, and how long the moved task
# then waited to run (median): the README's count of execs that sched_exec
# moved to the halted vCPU, natively and under uexec's tree.
#   bench/execmoves.sh sh -c 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done'
set -eu
t=/sys/kernel/tracing
[ -w "$t/trace" ] || { echo "execmoves: needs root and tracefs at $t" >&2; exit 2; }
echo 0 >"$t/tracing_on"
echo >"$t/trace"
echo 'sched:sched_switch sched:sched_migrate_task sched:sched_process_exec' >"$t/set_event"
echo 1 >"$t/tracing_on"
"$@" >/dev/null || true
echo 0 >"$t/tracing_on"
echo >"$t/set_event"
python3 - "$t/trace" <<'PY'
import re, sys
execs = moves = 0
pending, waits = {}, []
for l in open(sys.argv[1]):
    m = re.search(r'\s(\d+\.\d+): (\w+): (.*)', l)
    if not m:
        continue
    t, ev, a = float(m.group(1)), m.group(2), m.group(3)
    if ev == 'sched_process_exec':
        execs += 1
    elif ev == 'sched_migrate_task':
        c = re.search(r'comm=(\S+) pid=(\d+)', a)
        if c and c.group(1) in ('sh', 'true'):
            moves += 1
            pending[c.group(2)] = t
    elif ev == 'sched_switch':
        c = re.search(r'next_pid=(\d+)', a)
        if c and c.group(1) in pending:
            waits.append((t - pending.pop(c.group(1))) * 1e6)
waits.sort()
med = waits[len(waits) // 2] if waits else 0
print("execs %d, moves of sh/true to another CPU %d, waited %.0f us (median), %.1f ms in all" % (execs, moves, med, sum(waits) / 1e3))
PY
