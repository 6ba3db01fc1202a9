from __future__ import annotations

from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "policy"
    verbose_name = "Verification policy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the change announcements of VerifyParams and registers the what-if task with Celery.
        from policy import signals, whatif_tasks  # noqa: F401
