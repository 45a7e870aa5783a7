from django.db import migrations

# Compacted history: a closed day of samples becomes one row per series and day (instances/
# compaction.py). Timestamps are stored as microsecond deltas (the first from the start of the day,
# each next from the one before: regular scrapes repeat one delta, which lz4 reduces to almost
# nothing), values as plain float8 (bit for bit, NaN payloads too). Both are arrays rather than an
# opaque encoding so that SQL readers (aggregates, rollups) decode them with a running sum, while
# the PromQL path reads the arrays as they are and decodes them in numpy.
CREATE = """
CREATE TABLE sample_blocks (
    series_id bigint NOT NULL,
    day timestamptz NOT NULL,
    count integer NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    ts_deltas_us bigint[] NOT NULL,
    sample_values double precision[] NOT NULL,
    PRIMARY KEY (series_id, day)
) PARTITION BY RANGE (day);
-- lz4 where the server was built with it (faster than pglz, which stays the fallback).
DO $$ BEGIN
    ALTER TABLE sample_blocks
        ALTER COLUMN ts_deltas_us SET COMPRESSION lz4,
        ALTER COLUMN sample_values SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN NULL;
END $$;
"""

# The samples of some series (or of all) in [lo, hi), raw and compacted alike (or compacted only):
# every SQL reader of samples reads them through these. Plain SQL functions, so the planner inlines them into the
# caller's query (partition pruning and the (series_id, ...) indexes keep working). A block holds
# one UTC day, so only blocks starting in (lo - 1 day, hi) can hold samples of the window.
BLOCK_SAMPLES = """
    SELECT b.series_id, d.ts, d.value FROM sample_blocks b CROSS JOIN LATERAL (
        SELECT b.day + sum(u.delta::float8) OVER (ORDER BY u.n ROWS UNBOUNDED PRECEDING)
            * interval '1 microsecond' AS ts, u.value
        FROM unnest(b.ts_deltas_us, b.sample_values) WITH ORDINALITY AS u(delta, value, n)
    ) d
    WHERE {series} b.day > lo - interval '1 day' AND b.day < hi
        AND b.last_ts >= lo AND b.first_ts < hi AND d.ts >= lo AND d.ts < hi
"""
FUNCTIONS = f"""
CREATE FUNCTION block_samples_between(ids bigint[], lo timestamptz, hi timestamptz)
RETURNS TABLE (series_id bigint, ts timestamptz, value double precision)
LANGUAGE sql STABLE AS $$
    {BLOCK_SAMPLES.format(series="b.series_id = ANY(ids) AND")}
$$;
CREATE FUNCTION samples_between(ids bigint[], lo timestamptz, hi timestamptz)
RETURNS TABLE (series_id bigint, ts timestamptz, value double precision)
LANGUAGE sql STABLE AS $$
    SELECT r.series_id, r.ts, r.value FROM samples r
    WHERE r.series_id = ANY(ids) AND r.ts >= lo AND r.ts < hi
    UNION ALL
    {BLOCK_SAMPLES.format(series="b.series_id = ANY(ids) AND")}
$$;
CREATE FUNCTION all_samples_between(lo timestamptz, hi timestamptz)
RETURNS TABLE (series_id bigint, ts timestamptz, value double precision)
LANGUAGE sql STABLE AS $$
    SELECT r.series_id, r.ts, r.value FROM samples r WHERE r.ts >= lo AND r.ts < hi
    UNION ALL
    {BLOCK_SAMPLES.format(series="")}
$$;
"""

DROP = """
DROP FUNCTION all_samples_between(timestamptz, timestamptz);
DROP FUNCTION samples_between(bigint[], timestamptz, timestamptz);
DROP FUNCTION block_samples_between(bigint[], timestamptz, timestamptz);
DROP TABLE sample_blocks;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0009_merge_reported_status_and_copy_progress"),
    ]

    operations = [migrations.RunSQL(CREATE + FUNCTIONS, DROP)]
