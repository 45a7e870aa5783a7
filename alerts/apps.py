from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        from prometheus_client import REGISTRY

        from alerts.metrics import AlertingCollector

        REGISTRY.register(AlertingCollector())

        # Backup failures become alerts (backups stand alone; alerts listen to them).
        from alerts import backup_alerts  # noqa: F401
