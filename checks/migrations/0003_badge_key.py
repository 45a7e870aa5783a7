# Each check gets a random key for its public badges. Added nullable, filled row by row (one
# default would give every existing check the same key), then made unique.

from django.db import migrations, models

import checks.models


def give_each_check_a_key(apps, schema_editor):
    Check = apps.get_model("checks", "Check")
    for check in Check.objects.only("pk"):
        check.badge_key = checks.models.new_badge_key()
        check.save(update_fields=["badge_key"])


class Migration(migrations.Migration):

    dependencies = [
        ("checks", "0002_json_path"),
    ]

    operations = [
        migrations.AddField(
            model_name="check",
            name="badge_key",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(give_each_check_a_key, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="check",
            name="badge_key",
            field=models.CharField(
                default=checks.models.new_badge_key, editable=False, max_length=32, unique=True
            ),
        ),
    ]
