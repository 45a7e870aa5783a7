from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0005_rollups_lagging_rule"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="peak_severity",
            field=models.CharField(
                blank=True,
                choices=[
                    ("info", "Info"),
                    ("warning", "Warning"),
                    ("error", "Error"),
                    ("critical", "Critical"),
                ],
                max_length=16,
            ),
        ),
        # Earlier episodes kept no history of their severity: their last one is the best known.
        migrations.RunSQL(
            "UPDATE alerts_alert SET peak_severity = severity", reverse_sql=migrations.RunSQL.noop
        ),
    ]
