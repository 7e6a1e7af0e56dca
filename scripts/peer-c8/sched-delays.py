#!/usr/bin/env python3
"""Scheduling delays of one run of scripts/peer-c8.sh (`--perf-sched`), from the scheduler's
tracepoints (`perf record -e sched:sched_switch -e sched:sched_wakeup -a`, then `perf
script`): per thread kind, how often it was put on a CPU and how long it had waited for one
(since its wake-up, or since it was preempted), with the count of waits over 1 ms and over
3 ms per 100 answered requests; then, for the request threads' waits over 0.5 ms, which
threads held the CPUs meanwhile.

    perf script -i PERF_DATA | sched-delays.py REQUESTS

A request's latency includes every wait of the threads it passes through (wrk, the gateway's
connection threads, nginx), so when the waits over 3 ms on that path add up to more than one
per 100 requests, the p99 cannot be under 3 ms, whatever the code costs. `other` is every
thread not in the benchmark (the neighbours, the kernel's). (`perf sched record`, used before,
wrote nothing on one VM of this workplace, cause not found; these two tracepoints are all the
analysis needs.)
"""
import bisect
import collections
import re
import sys

KINDS = ("wrk", "nginx", "gateway-conn", "tokio-rt-worker", "activity-writer", "sqlx-sqlite",
         "floor-proxy", "gateway", "swapper")
# The request path: a wait of these threads is a wait of a request.
REQUEST = ("gateway-conn", "tokio-rt-worker", "floor-proxy")
LONG_US = 500.0
SWITCH = re.compile(r"\[(\d+)\]\s+([\d.]+): sched:sched_switch: prev_comm=(.*?) prev_pid=(\d+) "
                    r"prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")
WAKEUP = re.compile(r"\s([\d.]+): sched:sched_wakeup: comm=(.*?) pid=(\d+) prio")


def kind(comm):
    return next((k for k in KINDS if comm.startswith(k)), "other")


def main():
    requests = max(int(sys.argv[1]), 1)
    ready, comm, on_cpu = {}, {}, {}
    runs, long_waits = [], []
    delays = collections.defaultdict(list)
    for line in sys.stdin:
        m = SWITCH.search(line)
        if m:
            cpu, t = int(m[1]), float(m[2])
            prev, state, nxt = int(m[4]), m[5], int(m[7])
            comm[prev], comm[nxt] = m[3], m[6]
            if cpu in on_cpu:
                runs.append((on_cpu[cpu][1], t, prev))
            on_cpu[cpu] = (nxt, t)
            if state.startswith("R"):  # preempted: runnable, waiting again
                ready[prev] = t
            if nxt in ready:
                since = ready.pop(nxt)
                k = kind(comm[nxt])
                delays[k].append((t - since) * 1e3)
                if k in REQUEST and (t - since) * 1e6 > LONG_US:
                    long_waits.append((since, t))
            continue
        m = WAKEUP.search(line)
        if m:
            ready.setdefault(int(m[3]), float(m[1]))
            comm[int(m[3])] = m[2]
    print(f"     {'thread':<17}{'runs/req':>9}{'mean ms':>9}{'p99 ms':>8}{'max ms':>8}"
          f"{'>1ms per 100 req':>18}{'>3ms per 100 req':>18}")
    for k, xs in sorted(delays.items()):
        xs.sort()
        n = len(xs)
        print(f"     {k:<17}{n / requests:>9.2f}{sum(xs) / n:>9.3f}{xs[int(n * 0.99)]:>8.2f}"
              f"{xs[-1]:>8.2f}{100 * sum(x > 1 for x in xs) / requests:>18.2f}"
              f"{100 * sum(x > 3 for x in xs) / requests:>18.2f}")
    runs.sort()
    starts = [r[0] for r in runs]
    longest = max((e - s for s, e, _ in runs), default=0)
    held, total = collections.Counter(), 0.0
    for since, until in long_waits:
        total += until - since
        for start, end, pid in runs[bisect.bisect_left(starts, since - longest):]:
            if start > until:
                break
            overlap = min(end, until) - max(start, since)
            if overlap > 0:
                held[kind(comm.get(pid, ""))] += overlap
    print(f"     request threads' waits over {LONG_US:.0f} µs: {len(long_waits)} "
          f"({100 * len(long_waits) / requests:.2f} per 100 requests), {total * 1e3:.1f} ms "
          f"in all; the CPUs meanwhile ran (ms, both CPUs):")
    for k, v in held.most_common():
        print(f"       {k:<17}{v * 1e3:>9.1f}")


if __name__ == "__main__":
    main()
