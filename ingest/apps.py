from __future__ import annotations

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"
    verbose_name = "Ingest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the change announcements and registers the what-if task with Celery.
        from ingest import signals, whatif_tasks  # noqa: F401
