from django.db import migrations

from accounts.adapters import MFA_SECRETS
from config import encryption

SECRET_KEYS = {"totp": ["secret"], "recovery_codes": ["seed"]}


def encrypt_stored_authenticators(apps, schema_editor):
    """Two-factor secrets stored in the clear before MFAAdapter encrypted them."""
    Authenticator = apps.get_model("mfa", "Authenticator")
    for authenticator in Authenticator.objects.filter(type__in=SECRET_KEYS):
        data = authenticator.data
        for key in SECRET_KEYS[authenticator.type]:
            if key in data and not encryption.is_encrypted(data[key]):
                data[key] = encryption.encrypt(data[key], MFA_SECRETS)
        if "migrated_codes" in data:
            data["migrated_codes"] = [
                code if encryption.is_encrypted(code) else encryption.encrypt(code, MFA_SECRETS)
                for code in data["migrated_codes"]
            ]
        authenticator.save(update_fields=["data"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_roles"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [
        migrations.RunPython(encrypt_stored_authenticators, migrations.RunPython.noop),
    ]
