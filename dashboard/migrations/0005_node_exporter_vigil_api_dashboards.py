from django.db import migrations

from dashboard.shipped import provision


def ship(apps, schema_editor):
    """Adds the shipped dashboards not there yet: "Node exporter", "Vigil", "API performance"."""
    provision(apps)


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0004_stars")]

    operations = [migrations.RunPython(ship, migrations.RunPython.noop)]
