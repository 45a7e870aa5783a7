from django.db import migrations

# Samples live outside the ORM: a table range-partitioned by day on ts, written with binary COPY.
# The (series_id, ts) primary key serves single-series reads and makes writes idempotent; BRIN on
# ts serves time-bounded scans cheaply. Daily partitions are created ahead by a beat task and on
# demand by the store. No foreign key to the series table: it would cost every COPY a lookup,
# and series rows are only deleted with their instance (see the cleanup in the store).
CREATE = """
CREATE TABLE samples (
    series_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (series_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX samples_ts_brin ON samples USING brin (ts);
"""

DROP = "DROP TABLE samples;"


class Migration(migrations.Migration):
    dependencies = [("instances", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
