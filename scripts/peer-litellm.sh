#!/usr/bin/env bash
# Side-by-side peer run: LiteLLM's proxy and this project's gateway, the same mock upstream,
# the same open-loop load, one machine, one run.
#
#   scripts/peer-litellm.sh [--rps N] [--duration SECS] [--mode json|sse] [--database-url URL]
#
# Installs LiteLLM (version $LITELLM_VERSION, default 1.108.7) from PyPI into a throwaway
# virtualenv under target/peer/, starts the mock upstream, points LiteLLM (one worker, no
# database, logging off: its fastest configuration) at it, and runs the load test with the
# `external` variant aimed at LiteLLM. The final JSON line is the load test's: `external` is
# LiteLLM, `proxy_p50_us`/`proxy_p99_us` is what each proxy adds over `direct`.
set -euo pipefail
cd "$(dirname "$0")/.."

LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
RPS=40
DURATION=20
MODE=json
DATABASE_URL_ARG=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rps) RPS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --mode) MODE="$2"; shift 2 ;;
    --database-url) DATABASE_URL_ARG=(--database-url "$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

work=target/peer
mkdir -p "$work"
if [ ! -x "$work/venv/bin/litellm" ]; then
  echo "== installing litellm[proxy]==$LITELLM_VERSION into $work/venv"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
fi

echo "== building the gateway, the mock upstream and the load test"
cargo build --release -p loadtest -p gateway -p mock-upstream

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port)
# LiteLLM refuses to start without a strong master key; it is also the clients' Bearer key.
PEER_KEY="sk-peer-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
PEER_PORT=$(free_port)

MOCK_ADDR="127.0.0.1:$MOCK_PORT" target/release/mock_upstream >"$work/mock.log" 2>&1 &
MOCK_PID=$!
cat >"$work/litellm.yaml" <<YAML
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: mock-key
litellm_settings:
  telemetry: false
general_settings:
  master_key: $PEER_KEY
YAML
# LITELLM_LOCAL_MODEL_COST_MAP: use the bundled price map instead of downloading it.
LITELLM_LOCAL_MODEL_COST_MAP=True "$work/venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$PEER_PORT" \
  --num_workers 1 >"$work/litellm.log" 2>&1 &
PEER_PID=$!
trap 'kill $PEER_PID $MOCK_PID 2>/dev/null || true' EXIT

echo "== waiting for LiteLLM on $PEER_PORT"
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PEER_PORT/health/liveliness" >/dev/null 2>&1; then break; fi
  sleep 1
done
curl -fsS "http://127.0.0.1:$PEER_PORT/health/liveliness" >/dev/null || {
  echo "LiteLLM did not start; its log:" >&2; tail -50 "$work/litellm.log" >&2; exit 1; }

echo "== load: $RPS rps, $DURATION s, $MODE"
target/release/loadtest --rps "$RPS" --duration "$DURATION" --mode "$MODE" \
  --upstream-url "http://127.0.0.1:$MOCK_PORT" --target "http://127.0.0.1:$PEER_PORT" \
  --target-key "$PEER_KEY" "${DATABASE_URL_ARG[@]}" | tee "$work/result-$MODE-$RPS.json"
