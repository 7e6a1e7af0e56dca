-- One row per ActivityRecord; the columns follow the record's JSON names.
CREATE TABLE {log} (
    id UUID PRIMARY KEY,                   -- UUID v7
    kind TEXT NOT NULL,                    -- request | event
    timestamp TIMESTAMPTZ NOT NULL,
    user_id TEXT,
    session_id TEXT,
    app TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    api TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    upstream TEXT,
    stream BOOLEAN NOT NULL,
    status_code INTEGER,
    outcome TEXT NOT NULL,
    finish_reason TEXT,
    native_finish_reason TEXT,
    input_tokens BIGINT,
    output_tokens BIGINT,
    total_tokens BIGINT,
    cache_read_tokens BIGINT,
    cache_write_tokens BIGINT,
    reasoning_tokens BIGINT,
    usage_source TEXT NOT NULL,
    cost_usd NUMERIC,                      -- exact, never rounded
    ttft_ms DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION,
    speed DOUBLE PRECISION,
    error_type TEXT,
    error_message TEXT,
    metadata JSONB NOT NULL
);

-- One index serves every log query: a user's rows newest first (keyset cursor included),
-- carrying kind, model and provider so that filtered pages and counts are answered from the
-- index. Separate (user_id, model | provider, timestamp) indexes would double the cost of an
-- insert (measured: BENCHMARKS.md, "Storage").
CREATE INDEX {prefix}activity_log_user_time_idx ON {log} (user_id, timestamp DESC, id DESC)
    INCLUDE (kind, model, provider);
-- Retention deletes by time across users. Rows arrive in time order, so a BRIN index (a few
-- pages, nearly free to maintain) finds old ones as well as a B-tree would.
CREATE INDEX {prefix}activity_log_time_idx ON {log} USING brin (timestamp);

-- The daily rollup the stats read, maintained in the statement that inserts each batch.
-- NULLS NOT DISTINCT (PostgreSQL 15): a record without a model or user still has one row.
CREATE TABLE {daily} (
    user_id TEXT,
    day DATE NOT NULL,                     -- UTC
    kind TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    requests BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,          -- unknown counts as 0
    output_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,          -- input + output, the stats' "tokens"
    cost_usd NUMERIC NOT NULL,
    CONSTRAINT {prefix}activity_daily_key
        UNIQUE NULLS NOT DISTINCT (user_id, day, kind, model, provider)
);
