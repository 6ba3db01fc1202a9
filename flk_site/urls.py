from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
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
        # Admin pages of the models that moved out of ingest (tenancy, policy): old bookmarks and scripts land on
        # the same page at its new address.
        re_path(
            r"^admin/ingest/(?P<model>tenant|signingkey|apikey)/(?P<rest>[0-9A-Za-z_/-]*)$",
            RedirectView.as_view(url="/admin/tenancy/%(model)s/%(rest)s", permanent=True, query_string=True),
        ),
        re_path(
            r"^admin/ingest/(?P<model>verifyparams|whatifreport)/(?P<rest>[0-9A-Za-z_/-]*)$",
            RedirectView.as_view(url="/admin/policy/%(model)s/%(rest)s", permanent=True, query_string=True),
        ),
        path("admin/", admin.site.urls),
        path("accounts/", include("django.contrib.auth.urls")),
        path("review/", include("review.urls")),
    ]
if settings.FLK_BENCH_NOOP:  # the benchmark's framework ceiling; never mounted otherwise
    urlpatterns.append(path("v1/bench/noop", health.BenchNoopView.as_view(), name="bench-noop"))

handler400 = "flk_site.errors.bad_request"
handler404 = "flk_site.errors.page_not_found"
handler500 = "flk_site.errors.server_error"
