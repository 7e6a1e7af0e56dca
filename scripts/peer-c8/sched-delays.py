#!/usr/bin/env python3
"""Scheduling delays of one run of scripts/peer-c8.sh (`--perf-sched`), from the output of
`perf sched timehist`: per thread kind, how often it was put on a CPU and how long it had
waited for one (`sch delay`: since its wake-up, or since it was preempted), with the count of
waits over 1 ms and over 3 ms per 100 answered requests.

    sched-delays.py TIMEHIST_OUTPUT REQUESTS

A request's latency includes every wait of the threads it passes through (wrk, the gateway's
workers, nginx), so when the waits over 3 ms on that path add up to more than one per 100
requests, the p99 cannot be under 3 ms, whatever the code costs. `other` is every thread not
in the benchmark (the neighbours, the kernel's).
"""
import collections
import re
import sys

KINDS = ("wrk", "nginx", "tokio-rt-worker", "activity-writer", "sqlx-sqlite-wor", "gateway")
LINE = re.compile(r"\s*[\d.]+\s+\[\d+\]\s+(\S.*?)\[\d+(?:/\d+)?\]\s+[\d.]+\s+([\d.]+)\s+[\d.]+")


def main():
    requests = max(int(sys.argv[2]), 1)
    delays = collections.defaultdict(list)
    with open(sys.argv[1]) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                name = m[1].strip()
                delays[name if name in KINDS else "other"].append(float(m[2]))
    print(f"     {'thread':<17}{'runs/req':>9}{'mean ms':>9}{'p99 ms':>8}{'max ms':>8}"
          f"{'>1ms per 100 req':>18}{'>3ms per 100 req':>18}")
    for kind, xs in sorted(delays.items()):
        xs.sort()
        n = len(xs)
        print(f"     {kind:<17}{n / requests:>9.2f}{sum(xs) / n:>9.3f}{xs[int(n * 0.99)]:>8.2f}"
              f"{xs[-1]:>8.2f}{100 * sum(x > 1 for x in xs) / requests:>18.2f}"
              f"{100 * sum(x > 3 for x in xs) / requests:>18.2f}")


if __name__ == "__main__":
    main()
