from django.db import migrations


def clear_slugs_without_group(apps, schema_editor):
    """Checks whose group was deleted before its delete cleared their slugs kept a slug that
    their own form refuses (a slug is pinged under its group's ping key)."""
    Check = apps.get_model("checks", "Check")
    Check.objects.filter(group__isnull=True).exclude(slug="").update(slug="")


class Migration(migrations.Migration):

    dependencies = [
        ("checks", "0006_heartbeat_paused_without_schedule"),
    ]

    operations = [
        migrations.RunPython(clear_slugs_without_group, migrations.RunPython.noop),
    ]
