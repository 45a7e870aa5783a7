from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        from prometheus_client import REGISTRY

        from alerts.metrics import AlertingCollector

        REGISTRY.register(AlertingCollector())
