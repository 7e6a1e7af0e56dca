#!/usr/bin/env bash
# Contended-lock sleeps of a running process, by lock and thread: what a p99 tail on a
# saturated machine is made of when a thread sleeps on a lock another thread holds.
#
#   scripts/lock-waits.sh PID [SECONDS] [REQUESTS]
#
# Records every futex wait on a *contended* lock (`val == 2`: glibc's and std's mutexes mark
# a lock with waiters so) of PID for SECONDS (default 2) with its call stack (`perf record -e
# syscalls:sys_enter_futex --call-graph dwarf`; needs perf and the tracepoint, not hardware
# counters), then prints the waits by kind — Tokio's timer wheel, glibc's allocator arenas,
# hyper's pool, flume's channels, else the first frame of the process's own — and thread.
# With REQUESTS (answered during those SECONDS) it also prints them per 1,000 requests. Run
# it during a load (e.g. scripts/peer-c8.sh's wrk), as in BENCHMARKS.md, "Where the
# layer-off tail comes from".
set -euo pipefail
PID=$1; SECS=${2:-2}; REQUESTS=${3:-0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
timeout "$SECS" perf record -q -e syscalls:sys_enter_futex --filter 'val == 2' \
  --call-graph dwarf,8192 -p "$PID" -o "$out/perf.data" >/dev/null 2>&1 || true
perf script -i "$out/perf.data" 2>/dev/null >"$out/stacks.txt"
python3 - "$out/stacks.txt" "$REQUESTS" <<'PY'
import collections, re, sys
samples = open(sys.argv[1]).read().split('\n\n')
requests = int(sys.argv[2])
kinds = collections.Counter()
for s in samples:
    if 'futex' not in s:
        continue
    thread = s.strip().split()[0]
    if 'tokio::runtime::time' in s:
        kind = "Tokio's timer wheel"
    elif 'lll_lock_wait' in s:
        kind = "glibc's allocator arena"
    elif 'hyper_util' in s and 'pool' in s:
        kind = "hyper-util's pool"
    elif 'flume::' in s:
        kind = "flume channel"
    else:
        own = [re.sub(r'^\s*[0-9a-f]+ ', '', l).split(' (')[0]
               for l in s.strip().split('\n')[1:]
               if 'std::sys' not in l and 'syscall' not in l and 'futex' not in l]
        kind = 'other: ' + (own[0][:70] if own else '?')
    kinds[(kind, re.sub(r'-?\d+$', '', thread))] += 1
print(f"{sum(kinds.values())} contended-lock waits" + (f" over {requests} requests" if requests else ""))
for (kind, thread), n in kinds.most_common(15):
    per = f"  {n * 1000 / requests:6.1f} per 1,000 requests" if requests else ""
    print(f"{n:7d}  {kind:32s} {thread}{per}")
PY
