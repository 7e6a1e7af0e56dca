#!/usr/bin/env bash
# Closed loop, 8 connections: what the gateway adds over a static upstream under wrk.
#
#   scripts/peer-c8.sh [--runs N] [--duration SECS] [--modes "sse json"]
#                      [--variants "direct baseline noop sqlite"] [--compare BIN]
#                      [--with NAME:BASE:VAR=VALUE[,VAR=VALUE…]]… [--sched] [--perf-sched]
#                      [--bin GATEWAY_BINARY] [--order alternate|fixed]
#
# nginx (one worker) serves a static OpenAI chat stream (with its usage chunk) on one port
# and the chat.completion JSON on another (scripts/peer-c8/); `wrk -c8 -t2` POSTs a chat
# request (scripts/peer-c8/post.lua) to each variant in turn, `--runs` rounds of
# `--duration` seconds after a 2 s warm-up per gateway, everything on this machine:
#
#   direct    nginx itself
#   floor     a bare Tokio/hyper reverse proxy (examples/loadtest/src/bin/floor-proxy.rs): the
#             same server, client and runtime as the gateway and nothing else — what one more
#             Rust proxy hop costs on this machine, the floor under the gateway's own figures
#   baseline  the gateway with GATEWAY_ACTIVITY=off (no ActivityLayer)
#   noop      the gateway with DATABASE_URL=noop: (the layer, records discarded)
#   sqlite    the gateway as deployed by default: its SQLite store (a file in a temporary
#             directory) and the crash-safe spool on (ACTIVITY_SPOOL_DIR, synced every 50 ms)
#   sqlite-nospool  the same without the spool (ACTIVITY_SPOOL_DIR=off): where the time goes
#   compare   `sqlite` run from the gateway binary BIN (`--compare BIN`): an earlier build,
#             measured back to back with this one
#   NAME      (`--with NAME:BASE:VAR=VALUE,…`) the variant BASE with these environment
#             variables added, e.g. `--with w1:sqlite:TOKIO_WORKER_THREADS=1`; added to the
#             variants, measured in turn with the others
#
# The variants are measured one after the other in each round: in the order given in odd
# rounds and in the reverse order in even rounds (`--order alternate`, the default), so that
# no variant always runs in the same place. Where a variant runs matters on this kind of
# machine: measured right after another SQLite gateway, the same binary read 8–15 % more
# req/s than measured first (BENCHMARKS.md, 2026-12-06); `--order fixed` keeps the given
# order in every round. With `--compare` the summary also gives `compare` − `sqlite` for each
# order separately: their mean is the A/B, their difference the position's bias.
#
# `--sched` prints, after each run, every thread's time on a CPU and time waiting for one
# (runnable, on a run queue) per answered request, from /proc/PID/task/*/schedstat
# (scripts/peer-c8/schedstat.py): the gateway's threads, nginx's worker and wrk's threads.
# `--bin` runs that gateway binary instead of building one (e.g. when the machine must
# stay quiet). `--perf-sched` records the first round of each variant with `perf record -e
# sched:sched_switch -e sched:sched_wakeup -a` and prints each thread kind's waits for a CPU one
# by one (scripts/peer-c8/sched-delays.py): how many waits over 1 ms and 3 ms per 100
# requests — what a p99 is made of — and which threads held the CPUs while the request threads
# waited over 0.5 ms.
#
# Each gateway variant registers a user (the Bearer key of its runs) with credits no run uses
# up. Prints, per mode and variant, the median of the rounds with the spread (min–max) of
# p50, p99 and requests/s, and what each adds over `direct` (the median of the per-round
# differences). After the runs the SQLite gateways are stopped with SIGTERM and their
# records counted: every answered request must be in the database.
#
# Installs wrk and nginx with apt-get when missing (Debian/Ubuntu), builds the gateway with
# `cargo build --release -p gateway`. Results: target/peer-c8/results.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
DURATION=10
MODES="sse json"
VARIANTS="direct baseline noop sqlite"
COMPARE_BIN=""
GATEWAY_BIN=""
SCHED=0
PERF_SCHED=0
ORDER=alternate
CUR_ROUND=0
declare -A WITH_BASE WITH_ENV
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --modes) MODES="$2"; shift 2 ;;
    --variants) VARIANTS="$2"; shift 2 ;;
    --compare) COMPARE_BIN="$(realpath "$2")"; VARIANTS="$VARIANTS compare"; shift 2 ;;
    --with)
      IFS=: read -r name base vars <<<"$2"
      [[ "$name" =~ ^[a-z][a-z0-9-]*$ ]] || { echo "--with: NAME must be [a-z][a-z0-9-]*" >&2; exit 2; }
      WITH_BASE[$name]=$base; WITH_ENV[$name]=$vars; VARIANTS="$VARIANTS $name"; shift 2 ;;
    --sched) SCHED=1; shift ;;
    --perf-sched) PERF_SCHED=1; shift ;;
    --bin) GATEWAY_BIN="$(realpath "$2")"; shift 2 ;;
    --order)
      case "$2" in alternate|fixed) ORDER="$2" ;; *) echo "--order: alternate or fixed, not '$2'" >&2; exit 2 ;; esac
      shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

for tool in wrk nginx; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    echo "== installing $tool"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get install -y "$tool" >/dev/null
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "$GATEWAY_BIN" ]; then
  echo "== building the gateway and the floor proxy (release)"
  cargo build --release -p gateway -p loadtest --bin gateway --bin floor-proxy
  GATEWAY_BIN="$PWD/target/release/gateway"
fi
# The floor proxy is taken from beside the gateway binary (--bin DIR/gateway: DIR/floor-proxy).
FLOOR_BIN="$(dirname "$GATEWAY_BIN")/floor-proxy"
if [[ " $VARIANTS " == *" floor "* ]] && ! [ -x "$FLOOR_BIN" ]; then
  echo "variant floor: no $FLOOR_BIN (cargo build --release -p loadtest --bin floor-proxy)" >&2
  exit 2
fi

work="$PWD/target/peer-c8"
rm -rf "$work/run"
mkdir -p "$work/run/www"
run="$work/run"
cp scripts/peer-c8/chat-stream.sse scripts/peer-c8/chat.json "$run/www/"
LUA="$PWD/scripts/peer-c8/post.lua"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SSE_PORT=$(free_port)
JSON_PORT=$(free_port)
sed -e "s|@WORK@|$run|g" -e "s|@SSE_PORT@|$SSE_PORT|g" -e "s|@JSON_PORT@|$JSON_PORT|g" \
  scripts/peer-c8/nginx.conf.in >"$run/nginx.conf"
mkdir -p "$run"/nginx-{body,proxy,fastcgi,uwsgi,scgi}
chmod -R a+rX "$run"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -f "$run/nginx.pid" ]; then kill "$(cat "$run/nginx.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT

"$NGINX" -p "$run" -c "$run/nginx.conf" -e "$run/nginx-error.log"
for port in "$SSE_PORT" "$JSON_PORT"; do
  for _ in $(seq 1 50); do
    curl -fsS -X POST -d '{}' "http://127.0.0.1:$port/v1/chat/completions" -o /dev/null 2>/dev/null && break
    sleep 0.1
  done
done
curl -fsS -X POST -d '{}' "http://127.0.0.1:$SSE_PORT/v1/chat/completions" | grep -q '"usage":{"prompt_tokens"' || {
  echo "nginx does not serve the stream; its log:" >&2; cat "$run/nginx-error.log" >&2; exit 1; }

body_for() {
  case "$1" in
    sse) echo '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}' ;;
    json) echo '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}' ;;
  esac
}

# start_gateway NAME MODE: starts a gateway variant against MODE's nginx port; sets the
# variables G_PORT_<NAME> G_KEY_<NAME> G_PID_<NAME> G_DB_<NAME>.
start_gateway() {
  local name=$1 mode=$2 port upstream bin=$GATEWAY_BIN dir="$run/$1-$2"
  port=$(free_port)
  upstream=$SSE_PORT; [ "$mode" = json ] && upstream=$JSON_PORT
  mkdir -p "$dir"
  local env=(GATEWAY_ADDR="127.0.0.1:$port" UPSTREAM_URL="http://127.0.0.1:$upstream"
    INITIAL_CREDITS=1000000000 RUST_LOG=warn REGISTER_PER_MINUTE=1000)
  local base=$name extra=()
  if [ -n "${WITH_BASE[$name]:-}" ]; then
    base=${WITH_BASE[$name]}
    IFS=, read -r -a extra <<<"${WITH_ENV[$name]}"
  fi
  if [ "$base" = floor ]; then
    (cd "$dir" && exec env FLOOR_ADDR="127.0.0.1:$port" UPSTREAM_URL="http://127.0.0.1:$upstream" \
      "${extra[@]}" "$FLOOR_BIN") >"$dir/gateway.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
      curl -fsS -X POST -d '{}' "http://127.0.0.1:$port/v1/chat/completions" -o /dev/null 2>/dev/null && break
      sleep 0.1
    done
    printf -v "G_PORT_${name//-/_}" %s "$port"
    printf -v "G_KEY_${name//-/_}" %s ""
    printf -v "G_PID_${name//-/_}" %s "$pid"
    printf -v "G_ANSWERED_${name//-/_}" %s 0
    return
  fi
  case "$base" in
    baseline) env+=(GATEWAY_ACTIVITY=off DATABASE_URL=noop:) ;;
    noop) env+=(DATABASE_URL=noop:) ;;
    sqlite|compare) env+=(DATABASE_URL="sqlite://$dir/activity.db" ACTIVITY_SPOOL_DIR="$dir/spool") ;;
    sqlite-nospool) env+=(DATABASE_URL="sqlite://$dir/activity.db" ACTIVITY_SPOOL_DIR=off) ;;
    *) echo "unknown variant $name" >&2; exit 2 ;;
  esac
  env+=("${extra[@]}")
  [ "$base" = compare ] && bin=$COMPARE_BIN
  (cd "$dir" && exec env "${env[@]}" "$bin") >"$dir/gateway.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local key
  key=$(curl -fsS -X POST "http://127.0.0.1:$port/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"peer-$name-$mode@example.com\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])') || {
    echo "gateway $name did not start; its log:" >&2; tail -20 "$dir/gateway.log" >&2; exit 1; }
  printf -v "G_PORT_${name//-/_}" %s "$port"
  printf -v "G_KEY_${name//-/_}" %s "$key"
  printf -v "G_PID_${name//-/_}" %s "$pid"
  printf -v "G_DB_${name//-/_}" %s "$dir/activity.db"
  printf -v "G_ANSWERED_${name//-/_}" %s 0
}

# load VARIANT MODE SECS: one wrk run; prints its RESULT line's fields.
load() {
  local name=$1 mode=$2 secs=$3 url key=""
  if [ "$name" = direct ]; then
    url="http://127.0.0.1:$SSE_PORT"; [ "$mode" = json ] && url="http://127.0.0.1:$JSON_PORT"
  else
    local p="G_PORT_${name//-/_}" k="G_KEY_${name//-/_}"
    url="http://127.0.0.1:${!p}"; key=${!k}
  fi
  local pid="" before=0 line
  if [ "$name" != direct ]; then local p="G_PID_${name//-/_}"; pid=${!p}; before=$(cpu_ticks "$pid"); fi
  local perf_pid=""
  if [ "$PERF_SCHED" = 1 ] && [ "$CUR_ROUND" = 1 ]; then
    perf record -e sched:sched_switch -e sched:sched_wakeup -a -o "$run/perf-$name-$mode.data" \
      -- sleep "$secs" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  if [ "$SCHED" = 1 ] && [ "$secs" -gt 2 ]; then
    # Snapshots at the start and 1 s before the end (wrk's threads live only as long as the
    # run: they are read before it exits); the figures are per request of that window,
    # counted as the run's requests × (SECS − 1) / SECS.
    local nginx_workers sched_pids
    nginx_workers=$(pgrep -P "$(cat "$run/nginx.pid")" | tr '\n' ' ')
    sched_pids="$pid $nginx_workers"
    python3 scripts/peer-c8/schedstat.py snapshot $sched_pids >"$run/sched-before.json"
    PEER_BODY=$(body_for "$mode") PEER_KEY=$key \
      wrk -c8 -t2 -d"${secs}s" --latency -s "$LUA" "$url/v1/chat/completions" >"$run/wrk.out" &
    local wrk_pid=$!
    sleep $((secs - 1))
    python3 scripts/peer-c8/schedstat.py snapshot $sched_pids "$wrk_pid" >"$run/sched-after.json"
    wait "$wrk_pid"
    line=$(grep '^RESULT' "$run/wrk.out" | cut -d' ' -f2-)
    local window
    window=$(( $(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line") * (secs - 1) / secs ))
    python3 scripts/peer-c8/schedstat.py diff "$run/sched-before.json" "$run/sched-after.json" \
      "$window" "$mode $name" >&2
  else
    line=$(PEER_BODY=$(body_for "$mode") PEER_KEY=$key \
      wrk -c8 -t2 -d"${secs}s" --latency -s "$LUA" "$url/v1/chat/completions" | grep '^RESULT' | cut -d' ' -f2-)
  fi
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    perf script -i "$run/perf-$name-$mode.data" 2>/dev/null \
      | python3 scripts/peer-c8/sched-delays.py "$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")" | sed "s/^/   $mode $name /" >&2
  fi
  # The gateway's CPU time (user + system, all threads) per answered request: the steadiest
  # figure on a shared machine. Read 2 s after the run, so that it includes the writer
  # storing its last batch (which must not fall into the next variant's run either).
  local cpu=0
  if [ -n "$pid" ]; then
    sleep 2
    local ticks=$(( $(cpu_ticks "$pid") - before )) requests
    requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
    cpu=$(( ticks * 1000000 / $(getconf CLK_TCK) / (requests > 0 ? requests : 1) ))
  fi
  echo "$line cpu_us=$cpu"
}

# cpu_ticks PID: user + system clock ticks of the process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

results="$work/results.tsv"
echo -e "mode\tvariant\tround\tposition\tp50_us\tp99_us\trps\trequests\tnon2xx\tsocket_errors\tcpu_us" >"$results"
echo "== $(date -u +%FT%TZ), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in $MODES; do
  gateways=()
  CUR_ROUND=0
  for v in $VARIANTS; do
    [ "$v" = direct ] || { start_gateway "$v" "$mode"; gateways+=("$v"); }
  done
  for v in $VARIANTS; do
    line=$(load "$v" "$mode" 2)
    if [ "$v" != direct ]; then
      a="G_ANSWERED_${v//-/_}"; printf -v "G_ANSWERED_${v//-/_}" %s $(( ${!a} + $(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line") ))
    fi
  done
  for round in $(seq 1 "$RUNS"); do
    CUR_ROUND=$round
    order=$VARIANTS
    if [ "$ORDER" = alternate ] && [ $((round % 2)) = 0 ]; then
      order=$(tr ' ' '\n' <<<"$VARIANTS" | grep . | tac | tr '\n' ' ')
    fi
    position=0
    for v in $order; do
      position=$((position + 1))
      line=$(load "$v" "$mode" "$DURATION")
      echo "   $mode $v round $round (#$position): $line"
      # shellcheck disable=SC2001
      fields=$(sed 's/[a-z0-9_]*=//g' <<<"$line" | tr ' ' '\t')
      echo -e "$mode\t$v\t$round\t$position\t$fields" >>"$results"
      if [ "$v" != direct ]; then
        a="G_ANSWERED_${v//-/_}"; printf -v "G_ANSWERED_${v//-/_}" %s $(( ${!a} + $(cut -f4 <<<"$fields") ))
      fi
    done
  done
  for v in "${gateways[@]}"; do
    p="G_PID_${v//-/_}"; kill -TERM "${!p}"; wait "${!p}" || true
    b=${WITH_BASE[$v]:-$v}
    if [[ "$b" == sqlite* || "$b" == compare ]]; then
      db="G_DB_${v//-/_}"; a="G_ANSWERED_${v//-/_}"
      rows=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from activity_log where kind = '"'"'request'"'"'").fetchone()[0])' "${!db}")
      verdict=ok; [ "$rows" -ge "${!a}" ] || verdict="MISSING $(( ${!a} - rows ))"
      echo "   $mode $v: $rows records in SQLite for ${!a} answered requests ($verdict)"
    fi
  done
done
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$results" "$RUNS" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(xs): return statistics.median(xs)
def spread(xs): return f"{min(xs):,.0f}–{max(xs):,.0f}"
modes = dict.fromkeys(r["mode"] for r in rows)
print("\n| mode | variant | p50 µs | p99 µs | req/s | Δp50 µs | Δp99 µs | CPU µs/req | non-2xx |")
print("|---|---|---|---|---|---|---|---|---|")
for mode in modes:
    by = {}
    for r in rows:
        if r["mode"] == mode:
            by.setdefault(r["variant"], {})[r["round"]] = r
    direct = by.get("direct", {})
    for variant, rounds in by.items():
        p50 = [int(r["p50_us"]) for r in rounds.values()]
        p99 = [int(r["p99_us"]) for r in rounds.values()]
        rps = [float(r["rps"]) for r in rounds.values()]
        bad = sum(int(r["non2xx"]) + int(r["socket_errors"]) for r in rounds.values())
        d50 = d99 = cpu = ""
        if variant != "direct":
            xs = [int(r["cpu_us"]) for r in rounds.values()]
            cpu = f"{med(xs):,.0f} ({spread(xs)})"
        if variant != "direct" and direct:
            x50 = [int(r["p50_us"]) - int(direct[k]["p50_us"]) for k, r in rounds.items() if k in direct]
            x99 = [int(r["p99_us"]) - int(direct[k]["p99_us"]) for k, r in rounds.items() if k in direct]
            d50 = f"{med(x50):+,.0f} ({spread(x50)})"
            d99 = f"{med(x99):+,.0f} ({spread(x99)})"
        print(f"| {mode} | {variant} | {med(p50):,.0f} ({spread(p50)}) | {med(p99):,.0f} ({spread(p99)}) "
              f"| {med(rps):,.0f} ({spread(rps)}) | {d50} | {d99} | {cpu} | {bad} |")

# compare − sqlite, the rounds split by which of the two ran first: the mean of the two
# orders' medians is the A/B without the position's bias, half their difference that bias.
pairs = []
for mode in modes:
    by = {}
    for r in rows:
        if r["mode"] == mode and r["variant"] in ("sqlite", "compare"):
            by.setdefault(r["round"], {})[r["variant"]] = r
    for key, label in (("p99_us", "p99 µs"), ("rps", "req/s"), ("cpu_us", "CPU µs/req")):
        split = {"sqlite first": [], "compare first": []}
        for rnd in by.values():
            if len(rnd) < 2:
                continue
            s, c = rnd["sqlite"], rnd["compare"]
            first = "sqlite first" if int(s["position"]) < int(c["position"]) else "compare first"
            split[first].append(float(c[key]) - float(s[key]))
        if any(split.values()):
            meds = {k: med(v) for k, v in split.items() if v}
            both = f"{sum(meds.values()) / len(meds):+,.0f}" if len(meds) == 2 else "(one order only)"
            cells = " | ".join(f"{meds[k]:+,.0f} (n={len(split[k])})" if k in meds else "–" for k in split)
            pairs.append(f"| {mode} | {label} | {cells} | {both} |")
if pairs:
    print("\n| mode | compare − sqlite | sqlite first | compare first | mean of the two |")
    print("|---|---|---|---|---|")
    print("\n".join(pairs))
PY
