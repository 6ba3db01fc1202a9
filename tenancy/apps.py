from __future__ import annotations

from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenants and keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the change announcements of tenants and keys.
        from tenancy import signals  # noqa: F401
