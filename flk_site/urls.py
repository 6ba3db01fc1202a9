from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ingest import health

urlpatterns = [
    path("", include("ingest.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file: no inline script, so the Content-Security-Policy holds.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
if settings.FLK_CONSOLE_PAGES:  # off on the ingest pool: logins and pages run on the console pool
    urlpatterns += [
        path("admin/", admin.site.urls),
        path("accounts/", include("django.contrib.auth.urls")),
        path("review/", include("review.urls")),
    ]
if settings.FLK_BENCH_NOOP:  # the benchmark's framework ceiling; never mounted otherwise
    urlpatterns.append(path("v1/bench/noop", health.BenchNoopView.as_view(), name="bench-noop"))

handler400 = "flk_site.errors.bad_request"
handler404 = "flk_site.errors.page_not_found"
handler500 = "flk_site.errors.server_error"
