from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    # allauth's app is "Accounts" in Django admin too; this one holds the audit log.
    verbose_name = "Audit log"

    def ready(self):
        from accounts import signals

        signals.connect(self)
