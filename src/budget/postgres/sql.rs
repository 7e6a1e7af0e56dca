//! The budget store's SQL, rendered once per [`TableNames`]: `{counters}`, `{limits}`,
//! `{holds}` and `{holders}` are the qualified table names.
//!
//! Money is `NUMERIC` and travels as text both ways (never through a float); counts are
//! `BIGINT`. A window's end is computed from its name and start, so no row stores it.

use crate::sink::TableNames;

/// The tables and indexes; every statement is idempotent (run under an advisory lock).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS {counters} (
    subject TEXT NOT NULL,
    win TEXT NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    used_spend NUMERIC NOT NULL DEFAULT 0,
    used_tokens BIGINT NOT NULL DEFAULT 0,
    used_requests BIGINT NOT NULL DEFAULT 0,
    held_spend NUMERIC NOT NULL DEFAULT 0,
    held_tokens BIGINT NOT NULL DEFAULT 0,
    held_requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, win, start)
);
CREATE INDEX IF NOT EXISTS {prefix}budget_counters_window ON {counters} (win, start);
CREATE TABLE IF NOT EXISTS {limits} (
    subject TEXT NOT NULL,
    win TEXT NOT NULL,
    max_spend NUMERIC,
    max_tokens NUMERIC,
    max_requests NUMERIC,
    PRIMARY KEY (subject, win)
);
CREATE TABLE IF NOT EXISTS {holds} (
    id UUID NOT NULL,
    holder UUID NOT NULL,
    subject TEXT NOT NULL,
    win TEXT NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    spend NUMERIC NOT NULL,
    tokens BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (id, subject, win, start)
);
CREATE INDEX IF NOT EXISTS {prefix}budget_holds_holder ON {holds} (holder);
CREATE TABLE IF NOT EXISTS {holders} (
    holder UUID PRIMARY KEY,
    expires TIMESTAMPTZ NOT NULL
);
";

/// The checks of one admission as arrays: `$1` subjects, `$2` windows, `$3` starts, `$4`–`$6`
/// the estimate (spend as text, tokens, requests), `$7`–`$9` the default caps (text, null for
/// none). `lim` adds the caps in force (the subject's own, else the default).
const CHECKS: &str = "
req AS (
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[]::numeric[],
                         $5::int8[], $6::int8[], $7::text[]::numeric[], $8::text[]::numeric[],
                         $9::text[]::numeric[])
        AS r(subject, win, start, e_spend, e_tokens, e_requests, d_spend, d_tokens, d_requests)
),
lim AS (
    SELECT r.*,
           COALESCE(l.max_spend, r.d_spend) AS m_spend,
           COALESCE(l.max_tokens, r.d_tokens) AS m_tokens,
           COALESCE(l.max_requests, r.d_requests) AS m_requests
    FROM req r LEFT JOIN {limits} l ON l.subject = r.subject AND l.win = r.win
)";

/// Admission, one statement: lock the counters (in key order, so that admissions and
/// settlements never deadlock) and read their newest values, decide, and only if every
/// counter exists and fits, reserve on each and record the hold (`$10` its id, `$11` the
/// holder). Answers one row per check with the counter before the reservation (`complete` is
/// false when a counter row is missing: create it and ask again).
pub(super) const ADMIT: &str = "
WITH {checks},
locked AS MATERIALIZED (
    SELECT c.subject, c.win, c.start, c.used_spend, c.used_tokens, c.used_requests,
           c.held_spend, c.held_tokens, c.held_requests
    FROM {counters} c JOIN req r ON c.subject = r.subject AND c.win = r.win AND c.start = r.start
    ORDER BY c.subject, c.win, c.start
    FOR UPDATE OF c
),
verdict AS (
    SELECT (SELECT count(*) FROM locked) = (SELECT count(*) FROM req) AS complete,
           COALESCE(bool_and(
               (l.m_spend IS NULL OR k.used_spend + k.held_spend + l.e_spend <= l.m_spend)
               AND (l.m_tokens IS NULL OR k.used_tokens + k.held_tokens + l.e_tokens <= l.m_tokens)
               AND (l.m_requests IS NULL
                    OR k.used_requests + k.held_requests + l.e_requests <= l.m_requests)
           ), true) AS fits
    FROM locked k JOIN lim l ON k.subject = l.subject AND k.win = l.win AND k.start = l.start
),
reserve AS (
    UPDATE {counters} c
    SET held_spend = c.held_spend + l.e_spend,
        held_tokens = c.held_tokens + l.e_tokens,
        held_requests = c.held_requests + l.e_requests
    FROM lim l, verdict v
    WHERE v.complete AND v.fits
      AND c.subject = l.subject AND c.win = l.win AND c.start = l.start
    RETURNING c.subject
),
hold AS (
    INSERT INTO {holds} (id, holder, subject, win, start, spend, tokens, requests)
    SELECT $10, $11, l.subject, l.win, l.start, l.e_spend, l.e_tokens, l.e_requests
    FROM lim l, verdict v
    WHERE v.complete AND v.fits
    RETURNING id
)
SELECT l.subject, l.win, l.start, v.complete, v.fits AND v.complete AS admitted,
       k.used_spend::text, k.used_tokens, k.used_requests,
       k.held_spend::text, k.held_tokens, k.held_requests,
       l.m_spend::text, l.m_tokens::text, l.m_requests::text
FROM lim l CROSS JOIN verdict v
LEFT JOIN locked k ON k.subject = l.subject AND k.win = l.win AND k.start = l.start";

/// Creates missing counters (`$1`–`$3`: subjects, windows, starts).
pub(super) const CREATE_COUNTERS: &str = "
INSERT INTO {counters} (subject, win, start)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT DO NOTHING";

/// Settlement, one statement: lock the counters in key order, delete the hold `$10` (gone if
/// its lease already released it), move its amounts out of `held` and add the usage
/// (`$11` spend as text, `$12` tokens, `$13` requests) to `used`. Answers the counters after.
pub(super) const SETTLE: &str = "
WITH {checks},
locked AS MATERIALIZED (
    SELECT c.subject, c.win, c.start
    FROM {counters} c JOIN req r ON c.subject = r.subject AND c.win = r.win AND c.start = r.start
    ORDER BY c.subject, c.win, c.start
    FOR UPDATE OF c
),
freed AS (
    DELETE FROM {holds} WHERE id = $10
    RETURNING subject, win, start, spend, tokens, requests
),
settled AS (
    UPDATE {counters} c
    SET used_spend = c.used_spend + $11::text::numeric,
        used_tokens = c.used_tokens + $12,
        used_requests = c.used_requests + $13,
        held_spend = c.held_spend - COALESCE(f.spend, 0),
        held_tokens = c.held_tokens - COALESCE(f.tokens, 0),
        held_requests = c.held_requests - COALESCE(f.requests, 0)
    FROM locked k LEFT JOIN freed f
        ON f.subject = k.subject AND f.win = k.win AND f.start = k.start
    WHERE c.subject = k.subject AND c.win = k.win AND c.start = k.start
    RETURNING c.subject, c.win, c.start, c.used_spend, c.used_tokens, c.used_requests,
              c.held_spend, c.held_tokens, c.held_requests
)
SELECT l.subject, l.win, l.start, true, true,
       s.used_spend::text, s.used_tokens, s.used_requests,
       s.held_spend::text, s.held_tokens, s.held_requests,
       l.m_spend::text, l.m_tokens::text, l.m_requests::text
FROM lim l JOIN settled s ON s.subject = l.subject AND s.win = l.win AND s.start = l.start";

/// A settlement whose counter row was deleted meanwhile (its window long over): recreate it
/// with the usage (`$4` spend as text, `$5` tokens, `$6` requests).
pub(super) const SETTLE_MISSING: &str = "
INSERT INTO {counters} (subject, win, start, used_spend, used_tokens, used_requests)
SELECT s, w, t, $4::text::numeric, $5, $6 FROM UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS u(s, w, t)
ON CONFLICT (subject, win, start) DO UPDATE
SET used_spend = {counters}.used_spend + EXCLUDED.used_spend,
    used_tokens = {counters}.used_tokens + EXCLUDED.used_tokens,
    used_requests = {counters}.used_requests + EXCLUDED.used_requests";

/// The counters' state (same columns as [`ADMIT`]); missing ones come back with nulls.
pub(super) const READ: &str = "
WITH {checks}
SELECT l.subject, l.win, l.start, true, true,
       c.used_spend::text, c.used_tokens, c.used_requests,
       c.held_spend::text, c.held_tokens, c.held_requests,
       l.m_spend::text, l.m_tokens::text, l.m_requests::text
FROM lim l LEFT JOIN {counters} c
    ON c.subject = l.subject AND c.win = l.win AND c.start = l.start";

/// Sets one cap of a subject (`$1` subject, `$2` window, `$3` the cap as text or null); the
/// metric's column is spliced in by the caller from a fixed list.
pub(super) const SET_LIMIT: &str = "
INSERT INTO {limits} (subject, win, {column}) VALUES ($1, $2, $3::text::numeric)
ON CONFLICT (subject, win) DO UPDATE SET {column} = EXCLUDED.{column}";

/// Deletes a subject's caps row once it caps nothing.
pub(super) const DROP_EMPTY_LIMITS: &str = "
DELETE FROM {limits} WHERE subject = $1 AND win = $2
  AND max_spend IS NULL AND max_tokens IS NULL AND max_requests IS NULL";

/// Adds `$3` (text) to a cap, a missing one counting as 0; answers the new cap.
pub(super) const RAISE_LIMIT: &str = "
INSERT INTO {limits} (subject, win, {column}) VALUES ($1, $2, $3::text::numeric)
ON CONFLICT (subject, win) DO UPDATE
SET {column} = COALESCE({limits}.{column}, 0) + EXCLUDED.{column}
RETURNING {column}::text";

/// This process is alive for `$2` seconds more.
pub(super) const RENEW: &str = "
INSERT INTO {holders} (holder, expires) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (holder) DO UPDATE SET expires = EXCLUDED.expires";

/// Releases the holds of every process whose lease expired (or that never took one), and
/// forgets those processes.
pub(super) const REAP: &str = "
WITH freed AS (
    DELETE FROM {holds} h
    WHERE NOT EXISTS (SELECT 1 FROM {holders} p WHERE p.holder = h.holder AND p.expires > now())
    RETURNING subject, win, start, spend, tokens, requests
),
sums AS (
    SELECT subject, win, start, sum(spend) AS spend, sum(tokens) AS tokens,
           sum(requests) AS requests
    FROM freed GROUP BY subject, win, start
),
released AS (
    UPDATE {counters} c
    SET held_spend = c.held_spend - s.spend,
        held_tokens = c.held_tokens - s.tokens,
        held_requests = c.held_requests - s.requests
    FROM sums s
    WHERE c.subject = s.subject AND c.win = s.win AND c.start = s.start
    RETURNING c.subject
)
DELETE FROM {holders} WHERE expires <= now() - interval '1 hour'";

/// Deletes counters of windows that ended before the previous one did (nothing held).
pub(super) const PRUNE: &str = "
DELETE FROM {counters}
WHERE held_spend = 0 AND held_tokens = 0 AND held_requests = 0 AND (
       (win = 'minute' AND start < now() - interval '2 minutes')
    OR (win = 'hour' AND start < now() - interval '2 hours')
    OR (win = 'day' AND start < now() - interval '2 days')
    OR (win = 'month' AND start < now() - interval '2 months'))";

/// The SQL of one store, rendered for its table names.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) schema: String,
    pub(super) admit: String,
    pub(super) create_counters: String,
    pub(super) settle: String,
    pub(super) settle_missing: String,
    pub(super) read: String,
    pub(super) set_limit: [String; 3],
    pub(super) drop_empty_limits: String,
    pub(super) raise_limit: [String; 3],
    pub(super) renew: String,
    pub(super) reap: String,
    pub(super) prune: String,
}

/// The caps' columns, in [`Metric::ALL`](crate::budget::Metric::ALL) order.
const COLUMNS: [&str; 3] = ["max_spend", "max_tokens", "max_requests"];

impl Statements {
    pub(super) fn new(names: &TableNames) -> Self {
        let render = |sql: &str| {
            sql.replace("{checks}", CHECKS)
                .replace("{counters}", &names.qualified("budget_counters"))
                .replace("{limits}", &names.qualified("budget_limits"))
                .replace("{holds}", &names.qualified("budget_holds"))
                .replace("{holders}", &names.qualified("budget_holders"))
                .replace("{prefix}", names.prefix())
        };
        let per_column = |sql: &str| COLUMNS.map(|c| render(&sql.replace("{column}", c)));
        Statements {
            schema: render(SCHEMA),
            admit: render(ADMIT),
            create_counters: render(CREATE_COUNTERS),
            settle: render(SETTLE),
            settle_missing: render(SETTLE_MISSING),
            read: render(READ),
            set_limit: per_column(SET_LIMIT),
            drop_empty_limits: render(DROP_EMPTY_LIMITS),
            raise_limit: per_column(RAISE_LIMIT),
            renew: render(RENEW),
            reap: render(REAP),
            prune: render(PRUNE),
        }
    }
}
