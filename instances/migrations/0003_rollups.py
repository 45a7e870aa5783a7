from django.db import migrations

# 1-minute, 5-minute and 1-hour rollups of samples (min, max, sum, count, last per series and
# bucket), range-partitioned on bucket like samples (1m by day, 5m and 1h by month) so that
# retention drops whole partitions. rollup_watermark records how far each refresh has read; rollup_late lists the minutes
# that received samples older than the grace window, to be recomputed at the next refresh.
# The samples BRIN index is rebuilt with autosummarize so new block ranges are summarized as they
# fill, not only at the next VACUUM.
CREATE = """
CREATE TABLE samples_1m (
    series_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    sum double precision NOT NULL,
    count integer NOT NULL,
    last double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
) PARTITION BY RANGE (bucket);
CREATE INDEX samples_1m_bucket_brin ON samples_1m USING brin (bucket) WITH (autosummarize = on);

CREATE TABLE samples_5m (LIKE samples_1m INCLUDING CONSTRAINTS, PRIMARY KEY (series_id, bucket))
    PARTITION BY RANGE (bucket);
CREATE INDEX samples_5m_bucket_brin ON samples_5m USING brin (bucket) WITH (autosummarize = on);

CREATE TABLE samples_1h (LIKE samples_1m INCLUDING CONSTRAINTS, PRIMARY KEY (series_id, bucket))
    PARTITION BY RANGE (bucket);

CREATE TABLE rollup_watermark (
    resolution text PRIMARY KEY,
    upto timestamptz NOT NULL
);

CREATE TABLE rollup_late (
    series_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    PRIMARY KEY (series_id, bucket)
);

DROP INDEX samples_ts_brin;
CREATE INDEX samples_ts_brin ON samples USING brin (ts) WITH (autosummarize = on);
"""

DROP = """
DROP TABLE samples_1m, samples_5m, samples_1h, rollup_watermark, rollup_late;
DROP INDEX samples_ts_brin;
CREATE INDEX samples_ts_brin ON samples USING brin (ts);
"""


class Migration(migrations.Migration):
    dependencies = [("instances", "0002_samples")]

    operations = [migrations.RunSQL(CREATE, DROP)]
