#!/usr/bin/env python3
"""Per-function instructions per request of the gateway, from the callgrind files that
`scripts/gateway-instructions.sh --keep` leaves, and the layer's share function by function.

    scripts/callgrind-slope.py DIR [--mode json] [--top 40] [--self] [--from baseline] [--to noop]

DIR holds `<mode>-<secs>-<variant>.out` and `<mode>-<secs>-<variant>.requests` for two
durations (SHORT and LONG). For each function, its inclusive instructions (`--self`: its
own, exclusive) per request are the slope between the two runs, (long − short) /
(requests_long − requests_short), so start-up, registration and the drain drop out as they
do for the totals. Prints the baseline's and the noop variant's slope and their difference
(the layer's share), largest differences first; `--from noop --to sqlite` compares two
other variants instead (there: what the SQLite store adds). Needs `callgrind_annotate`
(valgrind).
"""

import argparse
import pathlib
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)\s*$")


def per_function(path: pathlib.Path, inclusive: bool) -> dict:
    """Function name → instructions in one callgrind file (inclusive or exclusive)."""
    out = subprocess.run(
        [
            "callgrind_annotate",
            f"--inclusive={'yes' if inclusive else 'no'}",
            "--threshold=100",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    functions: dict = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = m.group(2)
        # Drop the "[binary]" suffix and the file name prefix ("file:function").
        name = re.sub(r"\s*\[[^\]]*\]$", "", name)
        if ":" in name and not name.startswith("<"):
            head, _, tail = name.partition(":")
            if "/" in head or head.endswith(".rs") or head == "???":
                name = tail
        functions[name] = functions.get(name, 0) + int(m.group(1).replace(",", ""))
    return functions


def slope(directory: pathlib.Path, mode: str, variant: str, inclusive: bool):
    runs = []
    for out in sorted(directory.glob(f"{mode}-*-{variant}.out")):
        requests = int(out.with_suffix(".requests").read_text().strip())
        runs.append((requests, per_function(out, inclusive)))
    if len(runs) != 2:
        sys.exit(f"{directory}: want two runs of {mode}/{variant}, found {len(runs)}")
    (n0, f0), (n1, f1) = sorted(runs, key=lambda r: r[0])
    dn = n1 - n0
    names = set(f0) | set(f1)
    return {k: (f1.get(k, 0) - f0.get(k, 0)) / dn for k in names}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", type=pathlib.Path)
    p.add_argument("--mode", default="json")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--self", dest="exclusive", action="store_true")
    p.add_argument("--from", dest="base", default="baseline")
    p.add_argument("--to", dest="variant", default="noop")
    a = p.parse_args()
    inclusive = not a.exclusive
    base = slope(a.dir, a.mode, a.base, inclusive)
    noop = slope(a.dir, a.mode, a.variant, inclusive)
    rows = [(noop.get(k, 0) - base.get(k, 0), base.get(k, 0), noop.get(k, 0), k)
            for k in set(base) | set(noop)]
    rows.sort(key=lambda r: -abs(r[0]))
    kind = "inclusive" if inclusive else "self"
    print(f"| Δ | {a.base} | {a.variant} | function ({a.mode}, {kind}, per request) |")
    print("|---:|---:|---:|---|")
    for d, b, n, k in rows[: a.top]:
        print(f"| {d:+,.0f} | {b:,.0f} | {n:,.0f} | `{k[:150]}` |")


if __name__ == "__main__":
    main()
