from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Holds the commands that wire the apps together (``manage.py bootstrap``)."""

    name = "config"
    verbose_name = "Vigil"
