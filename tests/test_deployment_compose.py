"""The Compose files describe the whole stack, and every setting they pass is one the service knows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_IMAGE = "flk-verifier:latest"
# The configuration contract (docs/operators/configuration.md); the docs' tables document these and more.
CONTRACT_SETTINGS = {
    "DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "PCS_SIGN_ALG",
    "PCS_HMAC_KEY", "PCS_HMAC_KEYS", "PCS_ED25519_PUB_B64", "PCS_ED25519_PUB_KEYS", "FLK_WAL_DIR",
    "FLK_WAL_RETENTION_DAYS", "FLK_MAX_BODY_BYTES", "TOKEN_RATE", "TOKEN_BURST", "METRICS_USER", "METRICS_PASS",
    "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "DJANGO_SECURE_SSL_REDIRECT", "DJANGO_TRUST_X_FORWARDED_PROTO",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
}  # fmt: skip


def known_settings() -> set[str]:
    """The contract's names plus every variable the docs (docs/) document in a table row (`| `NAME` | ... |`)."""
    pages = "\n".join(page.read_text() for page in sorted((ROOT / "docs").rglob("*.md")))
    documented = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`", pages, flags=re.MULTILINE))
    return CONTRACT_SETTINGS | documented


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / "deploy" / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs


def interpolated(text: str) -> set[str]:
    """Names Compose substitutes from .env: ${NAME}, ${NAME:-default}, ${NAME:?message}."""
    return set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))


@pytest.fixture(scope="module")
def stack() -> dict:
    return load("docker-compose.yml")


def app_services(stack: dict) -> dict[str, dict]:
    return {name: service for name, service in stack["services"].items() if service.get("image") == APP_IMAGE}


def test_the_stack_has_every_service(stack):
    assert {"web", "worker", "beat", "postgres", "redis", "prometheus", "grafana", "agent"} <= set(stack["services"])
    assert stack["services"]["agent"]["profiles"] == ["agent"], "the synthetic agent runs only when asked"
    assert not [name for name, s in stack["services"].items() if name != "agent" and s.get("profiles")]


def test_every_service_names_a_pinned_image(stack):
    for name, service in stack["services"].items():
        image = service["image"]
        assert (":" in image and not image.endswith(":latest")) or image == APP_IMAGE, name
    assert set(app_services(stack)) >= {"web", "worker", "beat", "migrate", "agent"}
    assert {s["build"]["context"] for s in app_services(stack).values() if "build" in s} == {"."}


def test_one_image_runs_every_role(stack):
    services = stack["services"]
    assert services["web"]["command"][-1].endswith("exec gunicorn flk_site.wsgi")
    assert "python manage.py replay_wal" in services["web"]["command"][-1], "web replays its WAL before serving"
    assert services["worker"]["command"][:4] == ["celery", "-A", "flk_site", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "flk_site", "beat"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for role in ("web", "worker", "beat"):
        assert services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_web_keeps_its_wal_on_a_volume(stack):
    web = stack["services"]["web"]
    wal_dir = web["environment"]["FLK_WAL_DIR"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in web["volumes"]}
    assert any(wal_dir.startswith(path) and source in stack["volumes"] for path, source in mounts.items())


def test_app_containers_get_only_known_settings(stack):
    known = known_settings()
    overlay = load("docker-compose.caddy.yml")
    for source in (stack, overlay):
        for name, service in source["services"].items():
            if name in app_services(stack):
                unknown = set(service.get("environment", {})) - known
                assert not unknown, f"{name} sets unknown settings {sorted(unknown)}"


def test_env_example_holds_only_settings_and_what_other_services_interpolate(stack):
    compose_text = (ROOT / "docker-compose.yml").read_text() + (ROOT / "docker-compose.caddy.yml").read_text()
    consumed_by_other_services = interpolated(compose_text)
    names = set(env_example())
    unknown = names - known_settings() - consumed_by_other_services
    assert not unknown, f".env.example names neither a setting nor a Compose variable: {sorted(unknown)}"
    # Every variable the Compose files need is in the example, so `cp deploy/.env.example .env` is complete.
    assert consumed_by_other_services <= names
    for service in app_services(stack).values():
        assert service["env_file"] == ".env"


def test_no_secret_is_committed(stack):
    for name, value in env_example().items():
        if any(word in name for word in ("SECRET", "PASS", "KEY")) and value:
            assert value.startswith("change-me"), f"{name} in .env.example must be a placeholder"
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert ".env" in gitignore
    for service in stack["services"].values():
        for value in (service.get("environment") or {}).values():
            assert "change-me" not in str(value)


def test_prometheus_loads_the_alert_rules_and_grafana_is_provisioned(stack):
    prometheus = stack["services"]["prometheus"]
    mounts = dict(volume.split(":")[:2] for volume in prometheus["volumes"])
    config = load(mounts_source(mounts, "/etc/prometheus/prometheus.yml"))
    for rule_file in config["rule_files"]:
        assert (ROOT / mounts_source(mounts, rule_file)).exists()
    (job,) = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["web:8000"] and job["metrics_path"] == "/metrics"
    assert set(job["basic_auth"]) == {"username_file", "password_file"}
    assert set(stack["secrets"]) == {"metrics_user", "metrics_pass"}

    grafana = dict(volume.split(":")[:2] for volume in stack["services"]["grafana"]["volumes"])
    provisioning = ROOT / mounts_source(grafana, "/etc/grafana/provisioning")
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "flk.yml").read_text())["providers"][0]
    dashboards = ROOT / mounts_source(grafana, provider["options"]["path"])
    assert list(dashboards.glob("*.json"))


def mounts_source(mounts: dict[str, str], target: str) -> str:
    by_target = {container: host for host, container in mounts.items()}
    return by_target[target].removeprefix("./")


def test_caddy_overlay_terminates_tls_in_front_of_web():
    overlay = load("docker-compose.caddy.yml")
    caddy = overlay["services"]["caddy"]
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    caddyfile = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    assert "reverse_proxy proxy:8080" in caddyfile  # through the buffering proxy, never gunicorn directly
    assert "{$FLK_DOMAIN}" in caddyfile, "a site address by name: Caddy obtains its certificate automatically"
    assert overlay["services"]["web"]["environment"]["DJANGO_TRUST_X_FORWARDED_PROTO"] == "1"
