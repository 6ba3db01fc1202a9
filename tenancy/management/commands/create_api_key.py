"""manage.py create_api_key: issue an API key with which a tenant's clients read their outcomes."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tenancy.models import ApiKey, Tenant


class Command(BaseCommand):
    help = (
        "Issue an API key for TENANT and print it once (only its SHA-256 is stored). From then on "
        "GET /v1/pcs/<pcs_id> for that tenant needs 'Authorization: Bearer <key>'. Revoke a key by deleting it "
        "in the admin console (Tenants → the tenant → API keys)."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's name (as sent in X-Tenant-Id)")
        parser.add_argument("--name", required=True, help="what the key is for, e.g. 'grafana'")

    def handle(self, *args, tenant: str, name: str, **options):
        found = Tenant.objects.filter(name=tenant).first()
        if found is None:
            raise CommandError(f"no tenant named {tenant!r}")
        if not name.strip() or len(name) > 64:
            raise CommandError("--name must be 1–64 characters")
        key = ApiKey(tenant=found, name=name.strip())
        secret = key.issue()
        self.stdout.write(secret)
        self.stderr.write(f"API key {key.name!r} of tenant {tenant!r} ({key.prefix}…): shown once, store it now.")
