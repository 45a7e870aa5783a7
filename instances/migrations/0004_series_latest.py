from django.db import migrations, models

# Existing series take their newest stored sample; from now on the write path keeps it.
FILL_FROM_SAMPLES = """
UPDATE instances_series s SET last_ts = l.ts, last_value = l.value
FROM instances_series o CROSS JOIN LATERAL (
    SELECT ts, value FROM samples WHERE series_id = o.id ORDER BY ts DESC LIMIT 1
) l
WHERE s.id = o.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0003_rollups"),
    ]

    operations = [
        migrations.AddField(
            model_name="series",
            name="last_ts",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="series",
            name="last_value",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(FILL_FROM_SAMPLES, migrations.RunSQL.noop),
    ]
