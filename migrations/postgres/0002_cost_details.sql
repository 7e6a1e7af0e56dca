-- Exact money on every billable dimension (record fields of DESIGN §2): the tier the provider
-- says served the request, where the cost comes from, its parts, and the extra counts read.
-- Nullable columns without a default: PostgreSQL adds them without rewriting the table, and
-- rows written before read back as null (nothing was said, nothing was priced by part).
ALTER TABLE {log}
    ADD COLUMN service_tier TEXT,
    ADD COLUMN cost_source TEXT,           -- reported | computed
    ADD COLUMN cost_details JSONB,         -- {"input": "0.0000125", …}: exact decimal strings
    ADD COLUMN usage_details JSONB;        -- {"input_audio_tokens": 12, …}
