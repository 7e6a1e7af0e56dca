#!/usr/bin/env python3
"""How much machine code one exchange runs through, bare and behind the layer: the figure
beside the instruction counts that says why the layer's CPU time per request under load is
several times what its instructions would take on a warm core.

    scripts/code-footprint.py [--workloads json_openai_chat,sse_openai_chat_short_stripped]
                              [--exe target/release/deps/instructions-…] [--top 0]

For each workload of `testkit::workload` (the exchanges `benches/instructions.rs` counts),
runs the instructions bench's child (`--child NAME bare|layered 6`) under
`valgrind --tool=callgrind --dump-instr=yes`, with a profile dump before each exchange
builds its request, and reads the dump of the fourth exchange (steady state: the price
table parsed, the per-thread spares in place). For that one exchange it prints the
instructions executed, how many distinct instructions they were, and how many distinct
64-byte lines of code hold them (what the instruction cache must fetch when the request
arrives on a core whose caches the kernel, the load generator and the other connections have
used since); the layer's share is layered minus bare. `--top N` also lists the functions
whose distinct instructions the layer adds, most first.

Build the bench binary first: `cargo bench --bench instructions --no-run` (the newest
`target/release/deps/instructions-*` is used unless `--exe` names one). Needs valgrind.
"""

import argparse
import collections
import pathlib
import subprocess
import sys
import tempfile

LINE = 64
DUMP = 4


def newest_bench_exe() -> pathlib.Path:
    root = pathlib.Path(__file__).resolve().parent.parent
    found = [p for p in (root / "target/release/deps").glob("instructions-*")
             if p.suffix != ".d" and p.is_file()]
    if not found:
        sys.exit("no bench binary: run `cargo bench --bench instructions --no-run` first")
    return max(found, key=lambda p: p.stat().st_mtime)


def profile(exe: pathlib.Path, workload: str, variant: str, out: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--quiet", "--dump-instr=yes", "--compress-pos=no",
         "--compress-strings=no", "--dump-before=testkit::workload::Workload::request",
         f"--callgrind-out-file={out}", str(exe), "--child", workload, variant, "6"],
        check=True, stdout=subprocess.DEVNULL)
    return pathlib.Path(f"{out}.{DUMP}")


def load(path: pathlib.Path):
    """(object, address) → instructions executed there, and → the function it is in."""
    executed, function = {}, {}
    obj = fn = None
    call_cost = False
    for line in path.read_text().splitlines():
        if line.startswith("ob="):
            obj = line[3:]
        elif line.startswith("fn="):
            fn = line[3:]
        elif line.startswith("calls="):
            # The next line is the call's inclusive cost at the call instruction.
            call_cost = True
        elif line.startswith("0x"):
            parts = line.split()
            key = (obj, int(parts[0], 16))
            own = 0 if call_cost else int(parts[2])
            call_cost = False
            executed[key] = executed.get(key, 0) + own
            function[key] = fn
    return executed, function


def figures(executed: dict):
    return (sum(executed.values()), len(executed),
            len({(obj, addr // LINE) for obj, addr in executed}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="json_openai_chat,sse_openai_chat_short_stripped")
    p.add_argument("--exe", type=pathlib.Path)
    p.add_argument("--top", type=int, default=0)
    a = p.parse_args()
    exe = a.exe or newest_bench_exe()
    print("| workload | variant | instructions | distinct instructions | code lines (64 B) |")
    print("|---|---|---:|---:|---:|")
    added = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in a.workloads.split(","):
            runs = {}
            for variant in ("bare", "layered"):
                runs[variant] = load(profile(exe, w, variant, pathlib.Path(tmp) / f"{w}-{variant}"))
            bare, layered = figures(runs["bare"][0]), figures(runs["layered"][0])
            for name, f in (("bare", bare), ("layered", layered)):
                print(f"| {w} | {name} | {f[0]:,} | {f[1]:,} | {f[2]:,} ({f[2] * LINE / 1024:.1f} KiB) |")
            d = [x - y for x, y in zip(layered, bare)]
            print(f"| {w} | **layer** | {d[0]:+,} | {d[1]:+,} | {d[2]:+,} ({d[2] * LINE / 1024:+.1f} KiB) |")
            added.append((w, runs))
    for w, runs in added if a.top else []:
        base, (executed, function) = runs["bare"][0], runs["layered"]
        per_fn = collections.Counter(function[k] for k in executed if k not in base)
        print(f"\n{w}: the functions whose distinct instructions the layer adds")
        for fn, n in per_fn.most_common(a.top):
            print(f"{n:7,}  {fn[:140]}")


if __name__ == "__main__":
    main()
