from django.db import migrations


class Migration(migrations.Migration):
    """Joins two migrations that landed side by side; neither changes what the other does."""

    dependencies = [
        ("accounts", "0003_profile_time_zone"),
        ("accounts", "0003_two_factor_secrets_encrypted"),
    ]

    operations = []
