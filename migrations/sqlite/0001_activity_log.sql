-- One row per ActivityRecord; the columns follow the record's JSON names.
-- STRICT: SQLite checks the types, as PostgreSQL does.
CREATE TABLE {log} (
    id BLOB PRIMARY KEY NOT NULL,          -- UUID v7, 16 bytes (byte order = time order)
    kind TEXT NOT NULL,                    -- request | event
    timestamp INTEGER NOT NULL,            -- microseconds since 1970-01-01T00:00:00Z
    user_id TEXT,
    session_id TEXT,
    app TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    api TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    upstream TEXT,
    stream INTEGER NOT NULL,
    status_code INTEGER,
    outcome TEXT NOT NULL,
    finish_reason TEXT,
    native_finish_reason TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens INTEGER,
    usage_source TEXT NOT NULL,
    cost_usd TEXT,                         -- exact decimal text: SQLite has no exact decimal
    ttft_ms REAL,
    latency_ms REAL,
    speed REAL,
    error_type TEXT,
    error_message TEXT,
    metadata TEXT NOT NULL                 -- JSON object
) STRICT;

-- One index serves every log query (as in PostgreSQL, where the filter columns are INCLUDEd):
-- a user's rows newest first, carrying kind, model and provider for filtered pages and counts.
CREATE INDEX {prefix}activity_log_user_time_idx
    ON {log} (user_id, timestamp DESC, id DESC, kind, model, provider);
-- Retention deletes by time across users.
CREATE INDEX {prefix}activity_log_time_idx ON {log} (timestamp);

-- The daily rollup the stats read, maintained in the transaction of each batch.
-- One row per (user_id, day, kind, model, provider); NULL keys are matched with IS.
CREATE TABLE {daily} (
    user_id TEXT,
    day TEXT NOT NULL,                     -- YYYY-MM-DD (UTC)
    kind TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    requests INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,         -- unknown counts as 0
    output_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL,         -- input + output, the stats' "tokens"
    cost_usd TEXT NOT NULL                 -- exact decimal text, summed in Rust
) STRICT;

CREATE INDEX {prefix}activity_daily_key_idx ON {daily} (user_id, day, kind, model, provider);
