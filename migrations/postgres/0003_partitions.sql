-- activity_log partitioned by time (RANGE on timestamp), in place.
--
-- The partitions themselves are made by the sink (a month or a day each, ahead of time and
-- for any older record that arrives); retention drops them whole. A partitioned table's
-- unique keys must contain the partition key, so the primary key becomes (id, timestamp):
-- a record's timestamp never changes once it exists (retries, spool replays and redeliveries
-- carry the same record), so ON CONFLICT (id, timestamp) skips exactly the ids already
-- stored (docs/decisions.md, "Partitioned activity_log").
--
-- An existing table is not copied: it is renamed to {prefix}activity_log_legacy, its indexes
-- and key renamed with it, and attached as the partition of every time up to the month after
-- its newest row (or after now). Its rows stay where they are; its user/time and BRIN indexes
-- become the partitioned indexes' (no rebuild); only the (id, timestamp) key is built, once,
-- under this migration's lock (minutes for hundreds of millions of rows; run it in a quiet
-- hour). Retention deletes its old rows until its whole range is past the cutoff, then drops
-- it like any partition. An empty table is simply replaced.
ALTER TABLE {log} RENAME TO {prefix}activity_log_legacy;
ALTER TABLE {schema}{prefix}activity_log_legacy
    RENAME CONSTRAINT {prefix}activity_log_pkey TO {prefix}activity_legacy_pkey;
ALTER INDEX {schema}{prefix}activity_log_user_time_idx RENAME TO {prefix}activity_legacy_user_idx;
ALTER INDEX {schema}{prefix}activity_log_time_idx RENAME TO {prefix}activity_legacy_time_idx;

CREATE TABLE {log} (
    LIKE {schema}{prefix}activity_log_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    CONSTRAINT {prefix}activity_log_pkey PRIMARY KEY (id, timestamp)
) PARTITION BY RANGE (timestamp);
CREATE INDEX {prefix}activity_log_user_time_idx ON {log} (user_id, timestamp DESC, id DESC)
    INCLUDE (kind, model, provider);
CREATE INDEX {prefix}activity_log_time_idx ON {log} USING brin (timestamp);

DO $migration$
DECLARE
    bound TIMESTAMPTZ;
BEGIN
    IF EXISTS (SELECT 1 FROM {schema}{prefix}activity_log_legacy) THEN
        SELECT (date_trunc('month', greatest(max(timestamp), now()) AT TIME ZONE 'UTC')
                + interval '1 month') AT TIME ZONE 'UTC'
          INTO bound FROM {schema}{prefix}activity_log_legacy;
        -- A table has one primary key: the attach builds the (id, timestamp) one, so the old
        -- key on id goes first (the migration's transaction keeps every writer out meanwhile).
        ALTER TABLE {schema}{prefix}activity_log_legacy DROP CONSTRAINT {prefix}activity_legacy_pkey;
        EXECUTE format(
            'ALTER TABLE {log} ATTACH PARTITION {schema}{prefix}activity_log_legacy '
            'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    ELSE
        DROP TABLE {schema}{prefix}activity_log_legacy;
    END IF;
END
$migration$;
