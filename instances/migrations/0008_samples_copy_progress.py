from django.db import migrations

# How far `manage.py migrate_samples` has copied the samples to another engine: series are
# copied in id order, so the last whole series copied is where a new run goes on.
CREATE = """
CREATE TABLE samples_copy_progress (
    target text PRIMARY KEY,
    last_series_id bigint NOT NULL,
    copied bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now()
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0007_staleness_markers"),
    ]

    operations = [
        migrations.RunSQL(CREATE, "DROP TABLE samples_copy_progress"),
    ]
