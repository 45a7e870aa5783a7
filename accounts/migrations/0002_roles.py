"""The Viewer, Operator and Admin groups; existing users without a role join as Viewers."""

from django.db import migrations

from accounts.permissions import Role, sync_roles


def create_roles(apps, schema_editor):
    sync_roles(apps)
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    role_groups = Group.objects.filter(name__in=[role.group_name for role in Role])
    viewer = Group.objects.get(name=Role.VIEWER.group_name)
    for user in User.objects.exclude(groups__in=role_groups):
        user.groups.add(viewer)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_access_auditevent"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
