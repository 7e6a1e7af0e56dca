#!/usr/bin/env bash
# The load test three times per mode, and the median and spread of its figures.
#
#   scripts/loadtest-median.sh [--runs 3] [--rps 1000] [--duration 10] [--warmup 2]
#                              [--modes json,sse] [--variants baseline,noop,postgres]
#                              [--database-url URL] [--budget-store redis://…|off]
#
# Builds the release binaries it needs (the load test, the gateway, the mock upstream), then
# runs `loadtest` RUNS times for each mode — every run measures all the variants back to back,
# so each Δ is against the baseline of the same run — and prints, per mode and variant, the
# median [min … max] of Δp50/Δp99, of the gateway's CPU µs and context switches per request
# (also minus the same run's baseline: the layer's share) and in how many runs parity held
# (`loadtest summarize`). The JSON lines and the tables of every run are kept under
# target/loadtest/median-<time>/.
#
# The postgres variant needs PostgreSQL: --database-url, else $DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres. The budget layer keeps its counters in that
# database too, and on PostgreSQL each request waits for an admission commit (≈ 6 ms,
# benches/budget.rs), all on the run's one user: at 1,000 rps that variant answered 503s
# (budget store timeouts) on 2026-12-02. To measure the
# PostgreSQL *sink*, give the budget its own store: --budget-store redis://127.0.0.1:6379,
# or measure the activity layer and its sink alone: --budget-store off (GATEWAY_BUDGET=off).
# Exits non-zero when a run failed or lost rows.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
RPS=1000
DURATION=10
WARMUP=2
MODES=json,sse
VARIANTS=baseline,noop,postgres
DB="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BUDGET=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --rps) RPS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --modes) MODES="$2"; shift 2 ;;
    --variants) VARIANTS="$2"; shift 2 ;;
    --database-url) DB="$2"; shift 2 ;;
    --budget-store) BUDGET=(--budget-store "$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

echo "== building the load test, the gateway and the mock upstream (release)"
cargo build --release -p loadtest -p gateway -p mock-upstream

out="target/loadtest/median-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
echo "== $RUNS runs × modes $MODES, $RPS rps, ${DURATION} s (+${WARMUP} s warm-up), variants $VARIANTS ${BUDGET[*]}"
echo "== load: $(uptime)"
failed=0
files=()
for mode in ${MODES//,/ }; do
  files+=("$out/$mode.jsonl")
  for run in $(seq 1 "$RUNS"); do
    echo "== $mode, run $run of $RUNS"
    # The binary is run directly (not `cargo run`): it then uses the binaries built above.
    if ! target/release/loadtest --rps "$RPS" --duration "$DURATION" --warmup "$WARMUP" \
        --mode "$mode" --variants "$VARIANTS" --database-url "$DB" "${BUDGET[@]}" \
        >>"$out/$mode.jsonl" 2> >(tee -a "$out/$mode.log" >&2); then
      echo "== $mode run $run failed (or lost rows): see $out/$mode.log" >&2
      failed=1
    fi
  done
done
echo "== load after: $(uptime)"
target/release/loadtest summarize "${files[@]}" | tee "$out/summary.md"
echo "== runs kept in $out"
exit "$failed"
