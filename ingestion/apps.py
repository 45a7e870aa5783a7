from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"

    def ready(self):
        from prometheus_client import REGISTRY

        from ingestion.metrics import ScrapesCollector

        REGISTRY.register(ScrapesCollector())
