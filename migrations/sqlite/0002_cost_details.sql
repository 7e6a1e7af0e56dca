-- Exact money on every billable dimension (record fields of DESIGN §2): the tier the provider
-- says served the request, where the cost comes from, its parts, and the extra counts read.
-- Rows written before read back as null (nothing was said, nothing was priced by part).
ALTER TABLE {log} ADD COLUMN service_tier TEXT;
ALTER TABLE {log} ADD COLUMN cost_source TEXT;     -- reported | computed
ALTER TABLE {log} ADD COLUMN cost_details TEXT;    -- JSON object of exact decimal strings
ALTER TABLE {log} ADD COLUMN usage_details TEXT;   -- JSON object of counts
