#!/usr/bin/env python3
"""Per-thread scheduler figures of scripts/peer-c8.sh (`--sched`): how long each thread ran
and how long it waited, runnable, for a CPU.

    schedstat.py snapshot PID...                  > before.json
    schedstat.py diff before.json after.json REQUESTS [LABEL]

`snapshot` reads /proc/PID/task/*/schedstat for every thread of each PID: time on a CPU (ns),
time runnable on a run queue but not running (ns) and the number of time slices. `diff`
prints, per thread alive in both snapshots (by name, then thread id), what it ran and waited
per answered request and its mean wait per time slice: a request's latency includes every
wait of the threads it passes through, so a thread whose wait per slice approaches the tail
is where the tail comes from.
"""
import json
import os
import sys


def snapshot(pids):
    threads = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run, wait, slices = (int(x) for x in f.read().split())
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            threads[tid] = {"pid": pid, "comm": comm, "run": run, "wait": wait, "slices": slices}
    return threads


def diff(before, after, requests, label):
    requests = max(requests, 1)
    rows = []
    for tid, a in after.items():
        b = before.get(tid, {"run": 0, "wait": 0, "slices": 0})
        run, wait, slices = a["run"] - b["run"], a["wait"] - b["wait"], a["slices"] - b["slices"]
        if slices == 0:
            continue
        rows.append((a["comm"], int(tid), run, wait, slices))
    rows.sort()
    total_run = sum(r[2] for r in rows)
    total_wait = sum(r[3] for r in rows)
    for comm, tid, run, wait, slices in rows:
        print(f"     {label}{comm:<18} {tid:>7}  run {run / 1e3 / requests:7.1f} µs/req  "
              f"wait {wait / 1e3 / requests:7.1f} µs/req  {slices / requests:5.2f} slices/req  "
              f"wait/slice {wait / 1e3 / slices:7.1f} µs")
    print(f"     {label}{'all':<18} {'':>7}  run {total_run / 1e3 / requests:7.1f} µs/req  "
          f"wait {total_wait / 1e3 / requests:7.1f} µs/req")


def main():
    if sys.argv[1] == "snapshot":
        json.dump(snapshot(sys.argv[2:]), sys.stdout)
    elif sys.argv[1] == "diff":
        before = json.load(open(sys.argv[2]))
        after = json.load(open(sys.argv[3]))
        label = sys.argv[5] + " " if len(sys.argv) > 5 else ""
        diff(before, after, int(sys.argv[4]), label)
    else:
        sys.exit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
