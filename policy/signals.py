"""Every change to a VerifyParams version is announced, so that each process drops its cached copy."""

from __future__ import annotations

from policy.models import VerifyParams
from tenancy.config_cache import announce_changes_of

announce_changes_of(VerifyParams)
