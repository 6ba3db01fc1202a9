"""The people and tenants of a load run, created in the stack's database: run as a script with its environment.

    DJANGO_SETTINGS_MODULE=flk_site.settings DATABASE_URL=... python bench/load/tenants.py OUT.json T1 T2 ... --burst NAME

Each tenant signs with HMAC under a secret of its own and gets an API key (for GET /v1/pcs/<pcs_id>); NAME
gets a small token bucket (5/s, burst 10) so bursts meet its rate limit. Two reviewers and one admin are made
with generated passwords. Everything the clients need is written to OUT.json (mode 0600): the stack is
throwaway, so are these secrets. This is the one module of the load that imports the service's models.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

BURST_RATE, BURST_SIZE = 5.0, 10.0


def create(tenants: list[str], burst: str, reviewers: int) -> dict:
    from django.contrib.auth.models import Group, User

    from review.models import REVIEWERS_GROUP
    from tenancy.models import ApiKey, SigningKey, Tenant

    made: dict = {"tenants": {}, "reviewers": {}, "admin": {}}
    for name in [*tenants, burst]:
        secret = secrets.token_urlsafe(24)
        tenant = Tenant.objects.create(name=name, sign_alg="hmac",
                                       rate_per_second=BURST_RATE if name == burst else None,
                                       burst=BURST_SIZE if name == burst else None)  # fmt: skip
        SigningKey.objects.create(tenant=tenant, key_id="load", algorithm="hmac", secret=secret)
        made["tenants"][name] = {"hmac": secret, "api_key": ApiKey(tenant=tenant, name="load").issue()}
    group, _ = Group.objects.get_or_create(name=REVIEWERS_GROUP)
    for k in range(reviewers):
        password = secrets.token_urlsafe(16)
        user = User.objects.create_user(f"reviewer{k}", password=password)
        user.groups.add(group)
        made["reviewers"][user.username] = password
    password = secrets.token_urlsafe(16)
    User.objects.create_superuser("loadadmin", password=password)
    made["admin"] = {"loadadmin": password}
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("tenants", nargs="+")
    parser.add_argument("--burst", default="burst")
    parser.add_argument("--reviewers", type=int, default=2)
    args = parser.parse_args()
    import django

    django.setup()
    made = create(args.tenants, args.burst, args.reviewers)
    out = Path(args.out)
    out.touch(mode=0o600)
    out.write_text(json.dumps(made))
    os.chmod(out, 0o600)


if __name__ == "__main__":
    main()
