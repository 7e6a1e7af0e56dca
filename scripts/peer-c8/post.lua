-- wrk: POST the chat request of PEER_BODY with PEER_KEY as the Bearer key (none when unset).
wrk.method = "POST"
wrk.body = os.getenv("PEER_BODY")
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("PEER_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

-- `done` prints one line the script parses; non-2xx answers (summary.errors.status) make a
-- fast but wrong run, so they are reported beside the figures.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT p50_us=%d p99_us=%d rps=%.1f requests=%d non2xx=%d socket_errors=%d\n",
    latency:percentile(50), latency:percentile(99), summary.requests / (summary.duration / 1e6),
    summary.requests, errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
