# syntax=docker/dockerfile:1
# One image for every role; the command picks it:
#   web (default)   gunicorn flk_site.wsgi              (gunicorn.conf.py: FLK_BIND, WEB_CONCURRENCY, ...)
#   worker          celery -A flk_site worker
#   beat            celery -A flk_site beat --schedule /tmp/celerybeat-schedule
#   migrations      python manage.py migrate --noinput
#   WAL replay      python manage.py replay_wal          (before a web process serves)

# --- build: dependencies into a virtual environment, static files collected --------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Requirements first: this layer is rebuilt only when they change.
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt
WORKDIR /app
COPY . /app
# The agent package too, so the image can run `flk-agent` (the Compose agent profile).
RUN pip install --no-deps ./agent_client \
    && python -m compileall -q /app
# Settings refuse to start without a secret; these dummy values exist for this one command only and are
# not part of the image's environment.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret DJANGO_DEBUG=0 FLK_ALLOW_UNSIGNED=1 \
    FLK_VAR_DIR=/tmp/build-var FLK_STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var

# --- runtime: no compilers, no pip cache, a non-root user ------------------------------------------------
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 flk \
    && useradd --system --uid 10001 --gid flk --home-dir /app --no-create-home --shell /usr/sbin/nologin flk \
    && mkdir -p /var/lib/flk/wal /var/lib/flk-metrics \
    && chown -R flk:flk /var/lib/flk /var/lib/flk-metrics
COPY --from=build /opt/venv /opt/venv
# Code and static files owned by root: the service cannot rewrite itself.
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=flk_site.settings \
    FLK_VAR_DIR=/var/lib/flk \
    FLK_WAL_DIR=/var/lib/flk/wal \
    FLK_STATIC_ROOT=/app/staticfiles \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/flk-metrics \
    FLK_BIND=0.0.0.0:8000
# The WAL lives here: mount a volume (one per web process or pod, never shared).
VOLUME ["/var/lib/flk"]
USER 10001:10001
EXPOSE 8000
# /healthz answers while the process is alive; readiness (/readyz) is the orchestrator's business.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('FLK_BIND', '0.0.0.0:8000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
CMD ["gunicorn", "flk_site.wsgi"]
