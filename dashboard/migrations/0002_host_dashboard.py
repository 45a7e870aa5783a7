from django.db import migrations

from dashboard.shipped import provision


def ship(apps, schema_editor):
    provision(apps)


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0001_dashboards")]

    operations = [migrations.RunPython(ship, migrations.RunPython.noop)]
