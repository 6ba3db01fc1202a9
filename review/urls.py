from __future__ import annotations

from django.urls import path

from review import calibration_pages, views

app_name = "review"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.take_next, name="next"),
    path("undo/", views.undo, name="undo"),
    path("views/", views.save_view, name="save_view"),
    path("stats/", views.stats, name="stats"),
    path("disagreements/", views.disagreements, name="disagreements"),
    path("audit/", views.audit, name="audit"),
    path("labels/", views.labels_page, name="labels"),
    path("labels/import/", views.labels_import, name="labels_import"),
    path("labels/export.<str:fmt>", views.labels_export, name="labels_export"),
    path("calibration/", calibration_pages.calibration_index, name="calibration"),
    path("calibration/<str:tenant>/", calibration_pages.calibration_tenant, name="calibration_tenant"),
    path("item/<int:item_id>/", views.item_page, name="item"),
    path("item/<int:item_id>/claim/", views.claim, name="claim"),
    path("item/<int:item_id>/label/", views.label, name="label"),
    path("item/<int:item_id>/skip/", views.skip, name="skip"),
]
