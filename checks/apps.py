from django.apps import AppConfig
from django.db.models.signals import post_delete, pre_delete


class ChecksConfig(AppConfig):
    name = "checks"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from checks.metrics import ChecksCollector
        from checks.models import Check, CheckGroup

        REGISTRY.register(ChecksCollector())

        # Backup runs ping the backups' heartbeat; its schedule follows theirs.
        from checks import backup_heartbeat  # noqa: F401

        post_delete.connect(delete_check_instance, sender=Check, dispatch_uid="check-instance")
        pre_delete.connect(clear_group_slugs, sender=CheckGroup, dispatch_uid="group-slugs")


def delete_check_instance(sender, instance, **kwargs) -> None:
    """A check's instance is the check's record (its samples and alerts): it goes with the
    check, for admin, API and queryset deletes alike."""
    from instances.models import Instance

    Instance.objects.filter(pk=instance.instance_id).delete()


def clear_group_slugs(sender, instance, **kwargs) -> None:
    """A deleted group's checks stay, without a group, so their slugs (pinged under its ping
    key) are cleared with it: a slug without a group is refused on their next save. For the
    page, admin and queryset deletes alike."""
    from checks.models import Check

    Check.objects.filter(group=instance).exclude(slug="").update(slug="")
