"""Every change to a tenant or a key is announced, so that each process drops its cached copy."""

from __future__ import annotations

from tenancy.config_cache import announce_changes_of
from tenancy.models import ApiKey, SigningKey, Tenant

announce_changes_of(Tenant, SigningKey, ApiKey)
