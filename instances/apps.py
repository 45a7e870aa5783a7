from django.apps import AppConfig
from django.db.models.signals import pre_delete


class InstancesConfig(AppConfig):
    name = "instances"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from instances.models import Instance
        from instances.rollups import RollupCollector

        REGISTRY.register(RollupCollector())

        pre_delete.connect(
            delete_instance_samples, sender=Instance, dispatch_uid="instance-samples"
        )


def delete_instance_samples(sender, instance, **kwargs) -> None:
    """Samples have no foreign key to cascade, so every delete of an instance takes them here.

    Runs in the delete's transaction, for the API, admin and queryset deletes alike.
    """
    from instances.samples import samples_engine

    samples_engine().delete_samples_of_instance(instance.pk)
