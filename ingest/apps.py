from __future__ import annotations

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"
    verbose_name = "Ingest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ingest import signals  # noqa: F401  (connects the change announcements)
        from ingest import whatif_tasks  # noqa: F401  (registers the what-if task with Celery)
