#!/usr/bin/env bash
# Instructions per request of the whole gateway process, without and with the layer: the
# figure that stays put however busy the machine is (wall-clock and even CPU time do not).
#
#   scripts/gateway-instructions.sh [--rps 200] [--short 2] [--long 6] [--modes json,sse]
#                                   [--variants baseline,noop] [--budget-store redis://…|off]
#                                   [--database-url postgres://…]
#
# Needs valgrind. Builds the release binaries, then runs the load test with `--callgrind`
# (each gateway under `valgrind --tool=callgrind`) twice per mode, for SHORT and LONG
# measured seconds at RPS, and prints `loadtest summarize`: instructions per request is the
# slope between the two runs, so what a run pays once (start-up, registration, the drain)
# drops out; the layer's share is the variant's slope minus the baseline's. Kernel time
# (system calls, context switches) is not counted: that is what the load test's CPU and
# context-switch figures are for. Output is kept under target/loadtest/instructions-<time>/,
# with each gateway's callgrind file and request count (`<mode>-<secs>-<variant>.out`,
# `.requests`): `scripts/callgrind-slope.py DIR --mode json` turns them into instructions per
# request function by function, and the layer's share of each. `--database-url` goes to the
# load test, for its `postgres` variant (which it skips without one).
set -euo pipefail
cd "$(dirname "$0")/.."

RPS=200
SHORT=2
LONG=6
MODES=json,sse
VARIANTS=baseline,noop
BUDGET=()
DB=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rps) RPS="$2"; shift 2 ;;
    --short) SHORT="$2"; shift 2 ;;
    --long) LONG="$2"; shift 2 ;;
    --modes) MODES="$2"; shift 2 ;;
    --variants) VARIANTS="$2"; shift 2 ;;
    --budget-store) BUDGET=(--budget-store "$2"); shift 2 ;;
    --database-url) DB=(--database-url "$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }

echo "== building the load test, the gateway and the mock upstream (release)"
cargo build --release -p loadtest -p gateway -p mock-upstream

out="target/loadtest/instructions-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
files=()
for mode in ${MODES//,/ }; do
  files+=("$out/$mode.jsonl")
  for secs in "$SHORT" "$LONG"; do
    echo "== $mode, $secs s at $RPS rps under callgrind"
    target/release/loadtest --callgrind --rps "$RPS" --duration "$secs" --warmup 1 \
      --mode "$mode" --variants "$VARIANTS" "${BUDGET[@]}" "${DB[@]}" >>"$out/$mode.jsonl" 2>>"$out/$mode.log"
    for variant in ${VARIANTS//,/ }; do
      kept=$(ls -t target/loadtest/callgrind-*-"$variant".out 2>/dev/null | head -1)
      [ -n "$kept" ] || continue
      mv "$kept" "$out/$mode-$secs-$variant.out"
      tail -1 "$out/$mode.jsonl" | python3 -c \
        'import json,sys; print(json.load(sys.stdin)[sys.argv[1]]["requests"])' "$variant" \
        >"$out/$mode-$secs-$variant.requests"
    done
  done
done
target/release/loadtest summarize "${files[@]}" | tee "$out/summary.md"
