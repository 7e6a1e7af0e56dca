#!/usr/bin/env bash
# Seeds the fuzz corpora from the real captures in tests/fixtures: each seed starts with the
# byte that picks its wire format (src/fuzz.rs: 0 chat, 2 responses, 3 anthropic, 4 gemini)
# and, for `sse`, a framing byte (here 14: 7-byte frames, default line cap).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/sse corpus/json
pick() {
  case "$1" in
    anthropic*) echo 3 ;; gemini*) echo 4 ;; openai-responses*) echo 2 ;; *) echo 0 ;;
  esac
}
for f in ../tests/fixtures/*.sse ../tests/fixtures/*.json; do
  name=$(basename "$f")
  api=$(pick "$name")
  if [[ $f == *.sse ]]; then
    { printf "\\x0$api\\x0e"; cat "$f"; } > "corpus/sse/$name"
  else
    { printf "\\x0$api"; cat "$f"; } > "corpus/json/$name"
  fi
done
echo "seeded $(ls corpus/sse | wc -l) sse and $(ls corpus/json | wc -l) json inputs"
