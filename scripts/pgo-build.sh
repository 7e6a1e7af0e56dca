#!/usr/bin/env bash
# A profile-guided (PGO) release build of the gateway: the same source, laid out by how it runs.
#
#   scripts/pgo-build.sh [--out FILE] [--database-url postgres://…] [--budget-store redis://…]
#
# 1. builds the gateway instrumented (`-Cprofile-generate`, target/pgo/generate);
# 2. trains it: the load test (not instrumented) drives it at 500 rps through the mock
#    upstream for OpenAI chat JSON, streams and a mix, with the layer off, the no-op sink and
#    the SQLite store, the budget on (in SQLite) and off; then every other wire format
#    (Responses, Anthropic, Gemini; JSON and streams) a few hundred times by curl; with
#    `--database-url` also the PostgreSQL store, with `--budget-store` that budget store;
# 3. merges the profiles with the toolchain's `llvm-profdata` (`rustup component add
#    llvm-tools`: the one that reads what this rustc's LLVM writes);
# 4. builds the gateway with `-Cprofile-use` (target/pgo/use) and copies it to FILE (default
#    target/pgo/gateway).
#
# Code the training never ran is laid out and optimised as cold (for size): train with what
# you deploy — the database, the budget store, the wire formats your clients use — or a path
# left out runs slower than in the plain release build. The release profile's fat LTO
# applies to both builds. Takes about 17 minutes on two cores; needs curl. BENCHMARKS.md,
# "A profile-guided build", has what it changes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/pgo/gateway
DATABASE=""
BUDGET=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --database-url) DATABASE="$2"; shift 2 ;;
    --budget-store) BUDGET="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "pgo-build: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v curl >/dev/null || { echo "pgo-build: curl is needed for the training" >&2; exit 1; }
rustup component add llvm-tools >/dev/null
SYSROOT=$(rustc --print sysroot)
PROFDATA=$(find "$SYSROOT/lib/rustlib" -name llvm-profdata -type f | head -1)
[ -x "$PROFDATA" ] || { echo "pgo-build: llvm-profdata not found under $SYSROOT" >&2; exit 1; }

ROOT=$PWD/target/pgo
DATA=$ROOT/profiles
BINS=$ROOT/bins
rm -rf "$DATA" "$BINS"
mkdir -p "$DATA" "$BINS"

echo "== building the instrumented gateway and the load test"
RUSTFLAGS="-Cprofile-generate=$DATA" CARGO_TARGET_DIR=$ROOT/generate \
  cargo build --release -p gateway --bin gateway
# The same packages as the other scripts build, so that their build is reused, not redone
# with other features.
cargo build --release -p loadtest -p gateway -p mock-upstream
cp "$ROOT/generate/release/gateway" target/release/loadtest target/release/mock_upstream "$BINS/"

echo "== training: OpenAI chat under the load test"
VARIANTS=baseline,noop,sqlite
EXTRA=()
if [ -n "$DATABASE" ]; then
  VARIANTS=$VARIANTS,postgres
  EXTRA=(--database-url "$DATABASE")
fi
for mode in json sse mix; do
  "$BINS/loadtest" --rps 500 --duration 8 --warmup 1 --mode "$mode" --variants "$VARIANTS" \
    "${EXTRA[@]}" ${BUDGET:+--budget-store "$BUDGET"}
  "$BINS/loadtest" --rps 500 --duration 5 --warmup 1 --mode "$mode" --variants noop,sqlite \
    --budget-store off
done

echo "== training: Responses, Anthropic and Gemini by curl"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DB=$(mktemp -d)
GATEWAY_ADDR=127.0.0.1:$PORT DATABASE_URL=sqlite://$DB/train.db "$BINS/gateway" >"$DB/log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null || true; rm -rf "$DB"' EXIT
BASE=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
KEY=$(curl -sf "$BASE/auth/register" -H 'content-type: application/json' \
  -d '{"email":"pgo@example.com"}' | sed -E 's/.*"api_key":"([^"]+)".*/\1/')
post() { curl -sf -o /dev/null "$BASE$1" -H "authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d "$2"; }
for _ in $(seq 200); do
  post /v1/responses '{"model":"gpt-4o-mini","input":"Hello"}'
  post /v1/responses '{"model":"gpt-4o-mini","input":"Hello","stream":true}'
  post /v1/messages '{"model":"claude-3-5-haiku-20241022","max_tokens":20,"messages":[{"role":"user","content":"Hello"}]}'
  post /v1/messages '{"model":"claude-3-5-haiku-20241022","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"Hello"}]}'
  post /v1beta/models/gemini-2.0-flash:generateContent '{"contents":[{"role":"user","parts":[{"text":"Hello"}]}]}'
  post '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse' '{"contents":[{"role":"user","parts":[{"text":"Hello"}]}]}'
done
kill -TERM $GW
wait $GW || true

echo "== merging $(find "$DATA" -name '*.profraw' | wc -l) profiles"
"$PROFDATA" merge -o "$ROOT/merged.profdata" "$DATA"

echo "== building the gateway with the profile"
RUSTFLAGS="-Cprofile-use=$ROOT/merged.profdata" CARGO_TARGET_DIR=$ROOT/use \
  cargo build --release -p gateway --bin gateway
mkdir -p "$(dirname "$OUT")"
cp "$ROOT/use/release/gateway" "$OUT"
echo "pgo-build: $OUT"
