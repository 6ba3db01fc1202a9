"""The submit path's URLs: single and batch submission, a batch's status, and a stored outcome."""

from __future__ import annotations

from django.urls import path

from ingest import views

urlpatterns = [
    path("v1/pcs/submit", views.SubmitView.as_view(), name="pcs-submit"),
    path("v1/pcs/batch", views.BatchView.as_view(), name="pcs-batch"),
    path("v1/pcs/batch/<uuid:job_id>", views.BatchStatusView.as_view(), name="pcs-batch-status"),
    path("v1/pcs/<str:pcs_id>", views.OutcomeView.as_view(), name="pcs-outcome"),
]
