from __future__ import annotations

from django.urls import path

from review import calibration_pages, views

app_name = "review"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.take_next, name="next"),
    path("undo/", views.undo, name="undo"),
    path("stats/", views.stats, name="stats"),
    path("audit/", views.audit, name="audit"),
    path("calibration/", calibration_pages.calibration_index, name="calibration"),
    path("calibration/<str:tenant>/", calibration_pages.calibration_tenant, name="calibration_tenant"),
    path("item/<int:item_id>/", views.item_page, name="item"),
    path("item/<int:item_id>/label/", views.label, name="label"),
    path("item/<int:item_id>/skip/", views.skip, name="skip"),
]
