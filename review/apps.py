from __future__ import annotations

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ingest.signals import outcome_stored
        from review.services import enqueue_outcome

        def _enqueue(sender: object, **kwargs: object) -> None:
            enqueue_outcome(**kwargs)

        outcome_stored.connect(_enqueue, weak=False, dispatch_uid="review-enqueue-outcome")
