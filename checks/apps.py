from django.apps import AppConfig
from django.db.models.signals import post_delete


class ChecksConfig(AppConfig):
    name = "checks"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from checks.metrics import ChecksCollector
        from checks.models import Check

        REGISTRY.register(ChecksCollector())

        # Backup runs ping the backups' heartbeat; its schedule follows theirs.
        from checks import backup_heartbeat  # noqa: F401

        post_delete.connect(delete_check_instance, sender=Check, dispatch_uid="check-instance")


def delete_check_instance(sender, instance, **kwargs) -> None:
    """A check's instance is the check's record (its samples and alerts): it goes with the
    check, for admin, API and queryset deletes alike."""
    from instances.models import Instance

    Instance.objects.filter(pk=instance.instance_id).delete()
