//! The budget's Lua scripts. Each runs atomically in Redis, so one script is one admission
//! (or settlement, or reap) with no other command in between.
//!
//! Money is two integers per amount: `h` whole nanodollars and `l` the attodollars below
//! them (0 ≤ l < 10⁹), because Lua's numbers are doubles, exact only up to 2⁵³: each part
//! stays far below that (up to about nine million dollars per counter), so every sum is
//! exact to 18 decimal places. Counts (tokens, requests) are plain integers.
//!
//! A counter is a hash `uh ul ut ur` (used) `hh hl ht hr` (held); a subject's own caps a
//! hash `mh ml mt mr`. Per check the scripts take nine arguments: the estimate `eh el et er`,
//! the default caps `dh dl dt dr` (`""` for none), and the counter's expiry (Unix seconds,
//! `0` for never). They answer, per check, the twelve strings `uh ul ut ur hh hl ht hr mh ml
//! mt mr` (caps `""` when none).

/// What every script shares.
const PRELUDE: &str = r#"
local B = 1000000000
local function num(v) if v == false or v == nil or v == '' then return 0 end return tonumber(v) end
local function add(h1, l1, h2, l2)
  local h, l = h1 + h2, l1 + l2
  if l >= B then l = l - B; h = h + 1 end
  return h, l
end
local function sub(h1, l1, h2, l2)
  local h, l = h1 - h2, l1 - l2
  if l < 0 then l = l + B; h = h - 1 end
  if h < 0 then return 0, 0 end
  return h, l
end
local function le(h1, l1, h2, l2) return h1 < h2 or (h1 == h2 and l1 <= l2) end
local function s(x) return string.format('%.0f', x) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The counter KEYS[i] and its caps (the subject's own in KEYS[n + i], else the defaults in
-- ARGV[a + 5 ..]).
local function load(n, i, a)
  local c = redis.call('HMGET', KEYS[i], 'uh', 'ul', 'ut', 'ur', 'hh', 'hl', 'ht', 'hr')
  local m = redis.call('HMGET', KEYS[n + i], 'mh', 'ml', 'mt', 'mr')
  local x = {uh = num(c[1]), ul = num(c[2]), ut = num(c[3]), ur = num(c[4]),
             hh = num(c[5]), hl = num(c[6]), ht = num(c[7]), hr = num(c[8])}
  if m[1] then x.mh, x.ml = m[1], m[2] or '0' else x.mh, x.ml = ARGV[a + 5], ARGV[a + 6] end
  x.mt = m[3] or ARGV[a + 7]
  x.mr = m[4] or ARGV[a + 8]
  return x
end
local function store(i, a, x)
  redis.call('HSET', KEYS[i], 'uh', s(x.uh), 'ul', s(x.ul), 'ut', s(x.ut), 'ur', s(x.ur),
             'hh', s(x.hh), 'hl', s(x.hl), 'ht', s(x.ht), 'hr', s(x.hr))
  local exp = tonumber(ARGV[a + 9])
  if exp > 0 then redis.call('EXPIREAT', KEYS[i], exp) end
end
local function emit(out, x)
  for _, v in ipairs({s(x.uh), s(x.ul), s(x.ut), s(x.ur), s(x.hh), s(x.hl), s(x.ht), s(x.hr)}) do
    table.insert(out, v)
  end
  for _, v in ipairs({x.mh, x.ml, x.mt, x.mr}) do table.insert(out, v) end
end
"#;

/// Admission. KEYS: n counters, their n caps hashes, this process's holds hash, the
/// holders sorted set. ARGV: n, the hold's id, this process's id, the lease (ms), then nine
/// per check from ARGV[5]. Reserves every estimate only if each fits, records the hold (for
/// the reaper: the counters and amounts, as JSON) and renews the lease. Answers `"1"` or
/// `"0"` and the counters as they were before the reservation.
const ADMIT: &str = r#"
local n = tonumber(ARGV[1])
local fits, st = true, {}
for i = 1, n do
  local a = 4 + (i - 1) * 9
  local x = load(n, i, a)
  local eh, el, et, er = num(ARGV[a + 1]), num(ARGV[a + 2]), num(ARGV[a + 3]), num(ARGV[a + 4])
  if x.mh ~= '' then
    local th, tl = add(x.uh, x.ul, x.hh, x.hl)
    th, tl = add(th, tl, eh, el)
    if not le(th, tl, num(x.mh), num(x.ml)) then fits = false end
  end
  if x.mt ~= '' and x.ut + x.ht + et > tonumber(x.mt) then fits = false end
  if x.mr ~= '' and x.ur + x.hr + er > tonumber(x.mr) then fits = false end
  st[i] = x
end
local out = {fits and '1' or '0'}
for i = 1, n do emit(out, st[i]) end
if fits then
  local holds = {}
  for i = 1, n do
    local a = 4 + (i - 1) * 9
    local x = st[i]
    local y = {uh = x.uh, ul = x.ul, ut = x.ut, ur = x.ur}
    y.hh, y.hl = add(x.hh, x.hl, num(ARGV[a + 1]), num(ARGV[a + 2]))
    y.ht = x.ht + num(ARGV[a + 3])
    y.hr = x.hr + num(ARGV[a + 4])
    store(i, a, y)
    holds[i] = {KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]}
  end
  redis.call('HSET', KEYS[2 * n + 1], ARGV[2], cjson.encode(holds))
  redis.call('ZADD', KEYS[2 * n + 2], now_ms() + tonumber(ARGV[4]), ARGV[3])
end
return out
"#;

/// Settlement. KEYS: n counters, their n caps hashes, the holds hash of the process that
/// admitted. ARGV: n, the hold's id, the usage `h l t r`, then nine per check from ARGV[7].
/// Deletes the hold; if it was still there (its lease did not run out) takes its estimates
/// out of `held`; adds the usage to `used`. Answers the counters afterwards.
const SETTLE: &str = r#"
local n = tonumber(ARGV[1])
local freed = redis.call('HDEL', KEYS[2 * n + 1], ARGV[2]) == 1
local uh, ul, ut, ur = num(ARGV[3]), num(ARGV[4]), num(ARGV[5]), num(ARGV[6])
local out = {}
for i = 1, n do
  local a = 6 + (i - 1) * 9
  local x = load(n, i, a)
  if freed then
    x.hh, x.hl = sub(x.hh, x.hl, num(ARGV[a + 1]), num(ARGV[a + 2]))
    x.ht = math.max(0, x.ht - num(ARGV[a + 3]))
    x.hr = math.max(0, x.hr - num(ARGV[a + 4]))
  end
  x.uh, x.ul = add(x.uh, x.ul, uh, ul)
  x.ut = x.ut + ut
  x.ur = x.ur + ur
  store(i, a, x)
  emit(out, x)
end
return out
"#;

/// The counters as they are. KEYS: n counters, their n caps hashes. ARGV: n, then nine per
/// check from ARGV[2].
const READ: &str = r#"
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do emit(out, load(n, i, 1 + (i - 1) * 9)) end
return out
"#;

/// Housekeeping. KEYS: the holders sorted set. ARGV: the holds hashes' key prefix, this
/// process's id, the lease (ms). Renews this process's lease, then for every process whose
/// lease ran out takes each of its holds out of the counters' `held`, and forgets it.
const REAP: &str = r#"
local now = now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, holder in ipairs(dead) do
  local hk = ARGV[1] .. holder
  for _, payload in ipairs(redis.call('HVALS', hk)) do
    for _, h in ipairs(cjson.decode(payload)) do
      local key = h[1]
      if redis.call('EXISTS', key) == 1 then
        local c = redis.call('HMGET', key, 'hh', 'hl', 'ht', 'hr')
        local hh, hl = sub(num(c[1]), num(c[2]), num(h[2]), num(h[3]))
        redis.call('HSET', key, 'hh', s(hh), 'hl', s(hl),
                   'ht', s(math.max(0, num(c[3]) - num(h[4]))),
                   'hr', s(math.max(0, num(c[4]) - num(h[5]))))
      end
    end
  end
  redis.call('DEL', hk)
  redis.call('ZREM', KEYS[1], holder)
end
return #dead
"#;

/// Adds to a subject's cap. KEYS: its caps hash. ARGV: the metric (`spend`, `tokens`,
/// `requests`), the amount (`h l` for spend, the count and `0` otherwise), and its sign
/// (`+`, `-`). A cap would go below zero: an error, nothing changed. Answers the new cap.
const RAISE: &str = r#"
if ARGV[1] == 'spend' then
  local c = redis.call('HMGET', KEYS[1], 'mh', 'ml')
  local h, l = num(c[1]), num(c[2])
  local ah, al = num(ARGV[2]), num(ARGV[3])
  if ARGV[4] == '-' then
    if not le(ah, al, h, l) then return redis.error_reply('the cap would go below zero') end
    h, l = sub(h, l, ah, al)
  else
    h, l = add(h, l, ah, al)
  end
  redis.call('HSET', KEYS[1], 'mh', s(h), 'ml', s(l))
  return {s(h), s(l)}
end
local field = ARGV[1] == 'tokens' and 'mt' or 'mr'
local v = num(redis.call('HGET', KEYS[1], field))
if ARGV[4] == '-' then v = v - num(ARGV[2]) else v = v + num(ARGV[2]) end
if v < 0 then return redis.error_reply('the cap would go below zero') end
redis.call('HSET', KEYS[1], field, s(v))
return {s(v), '0'}
"#;

/// The scripts, each with the prelude (loaded once per server, then called by hash).
pub(super) struct Scripts {
    pub(super) admit: redis::Script,
    pub(super) settle: redis::Script,
    pub(super) read: redis::Script,
    pub(super) reap: redis::Script,
    pub(super) raise: redis::Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let script = |body: &str| redis::Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            admit: script(ADMIT),
            settle: script(SETTLE),
            read: script(READ),
            reap: script(REAP),
            raise: script(RAISE),
        }
    }
}
