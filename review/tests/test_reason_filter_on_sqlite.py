"""The reason filter works on the embedded default (SQLite, DJANGO_DEBUG=1, no DATABASE_URL) as on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from flk_site.testing import ensure_defaults, make_pcs
from ingest.models import PcsRecord
from tenancy.models import Tenant
from review.models import ReviewItem

ensure_defaults()
tenant, _ = Tenant.objects.get_or_create(name="acme", defaults={"sign_alg": "none"})
made = {}
for reasons in (["degraded"], ["coh_star_bounds", "D_hat_tolerance"]):
    pcs = make_pcs(degraded=True)
    at = timezone.now() - timedelta(hours=1)
    record = PcsRecord.objects.create(
        tenant=tenant, pcs_id=pcs["pcs_id"], shard_id=pcs["shard_id"], epoch=pcs["epoch"], signed_digest="0" * 64,
        body=pcs, d_hat=pcs["D_hat"], coh_star=pcs["coh_star"], r=pcs["r"], budget=pcs["budget"], regime=pcs["regime"],
        recomputed_d_hat=pcs["D_hat"], score=0.5, status_code=202, decision="escalate",
        response={"reasons": [{"code": c, "detail": ""} for c in reasons]}, params_version=1, received_at=at,
        verified_at=at)
    made[reasons[0]] = ReviewItem.objects.create(
        record=record, tenant="acme", pcs_id=pcs["pcs_id"], shard_id=pcs["shard_id"], decision="escalate",
        regime=pcs["regime"], reasons=reasons, score=0.5, received_at=at)
client = Client(HTTP_HOST="localhost")
client.force_login(User.objects.create_user("sqlite-reviewer", is_staff=True))
for reason in ("degraded", "D_hat_tolerance", "d_hat_mismatch"):
    response = client.get(f"/review/?reason={reason}")
    shown = sorted(k for k, item in made.items() if f"/review/item/{item.pk}/" in response.content.decode())
    print("filter", reason, response.status_code, ",".join(shown) or "-")
location = client.post("/review/next/", {"stream": "reason=D_hat_tolerance"})["Location"]
print("next", location == f"/review/item/{made['coh_star_bounds'].pk}/?reason=D_hat_tolerance")
"""


def test_the_reason_filter_and_a_stream_by_reason_work_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_DEBUG="1", FLK_VAR_DIR=str(tmp_path))
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    done = subprocess.run([*manage, "shell"], input=SCRIPT, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(("filter", "next"))]
    assert lines == [
        "filter degraded 200 degraded",
        "filter D_hat_tolerance 200 coh_star_bounds",
        "filter d_hat_mismatch 200 -",  # not a reason code of the verifier: nothing, not an error
        "next True",  # Next takes from the stream filtered by reason
    ]
