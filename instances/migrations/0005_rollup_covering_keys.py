from django.db import migrations

# Charts over days read the 5-minute and 1-hour rollups: with the aggregates in the primary key's
# index they come from an index-only scan (2,000 rows of one series in a few index pages) instead
# of one heap page per row, as rollups written time-major for every series lie on the heap.
# The 1-minute level, as long as the samples, stays narrow.
COVERED = "(series_id, bucket) INCLUDE (min, max, sum, count, last)"


def primary_keys(key: str) -> str:
    return "".join(
        f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, ADD PRIMARY KEY {key};"
        for table in ("samples_5m", "samples_1h")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0004_series_latest"),
    ]

    operations = [
        migrations.RunSQL(primary_keys(COVERED), primary_keys("(series_id, bucket)")),
    ]
