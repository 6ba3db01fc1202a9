"""Fixtures of the submit path's tests: a signed tenant, and faults injected into the real database connection."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models.query import QuerySet

from flk_site.testing import ensure_defaults
from review.models import ReviewItem
from tenancy.models import SigningKey, Tenant


@pytest.fixture
def acme(db):
    """Tenant acme, HMAC key k1 (\"testkey\"), PCS 0.2; the active VerifyParams a transactional flush removed."""
    ensure_defaults()
    tenant = Tenant.objects.create(name="acme", sign_alg="hmac", min_pcs_version="0.2")
    SigningKey.objects.create(tenant=tenant, key_id="k1", algorithm="hmac", secret="testkey")
    return tenant


def _statement_before_review_item_insert(sql: str):
    """A patch under which a review item's insert first runs ``sql`` on its connection; others run as usual."""
    bulk_create = QuerySet.bulk_create

    def run_first(self, objs, *args, **kwargs):
        if self.model is ReviewItem:
            with transaction.atomic(savepoint=False), connection.cursor() as cursor:
                cursor.execute(sql)
        return bulk_create(self, objs, *args, **kwargs)

    return mock.patch.object(QuerySet, "bulk_create", run_first)


@pytest.fixture
def database_lost_at_review_item_insert():
    """While active, a review item's insert finds its connection gone, as when PostgreSQL crashes between the
    outcome's statement and the review item's; every other insert runs as usual."""
    return _statement_before_review_item_insert("SELECT pg_terminate_backend(pg_backend_pid())")


@pytest.fixture
def database_refuses_review_item():
    """While active, a review item's insert is refused by PostgreSQL with a data error (a statement of ours that
    divides by zero), as a bug in a follow-up write would be; the PCS itself is fine."""
    return _statement_before_review_item_insert("SELECT 1 / 0")
