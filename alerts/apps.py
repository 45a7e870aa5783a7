from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        from prometheus_client import REGISTRY

        from alerts.metrics import AlertingCollector

        REGISTRY.register(AlertingCollector())

        # Backup failures and check problems become alerts (backups and checks do not depend
        # on alerts; alerts listen to their signals).
        from alerts import backup_alerts, check_alerts  # noqa: F401
