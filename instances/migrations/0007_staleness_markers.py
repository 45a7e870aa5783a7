from django.db import migrations

# Prometheus marks a series that ended (its target gone, or the series no longer exposed) with a
# staleness marker; PromQL then stops returning it at once instead of for the 5-minute lookback.
# Samples hold finite values only, so markers live beside them, one row per series and time;
# like samples and rollups they have no foreign key (store.delete_samples_of_instance clears them).
CREATE = """
CREATE TABLE staleness_markers (
    series_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    PRIMARY KEY (series_id, ts)
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0006_repair_unwritable_metadata"),
    ]

    operations = [
        migrations.RunSQL(CREATE, "DROP TABLE staleness_markers"),
    ]
