"""A migration that changes a column the prepared insert returns does not fail the submissions that follow."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from flk_site.testing import make_pcs, signed
from ingest.models import PcsRecord

pytestmark = pytest.mark.django_db(transaction=True)  # the request path's own kept connection, as in service


def _alter(column_type: str) -> None:
    """ALTER TABLE from another session, as a migration run by a new release would."""
    params = connection.get_connection_params()
    with psycopg.connect(
        dbname=params["dbname"], user=params.get("user"), host=params.get("host"), port=params.get("port"),
        password=params.get("password"), autocommit=True,
    ) as other:  # fmt: skip
        other.execute(f"ALTER TABLE {PcsRecord._meta.db_table} ALTER COLUMN signed_digest TYPE {column_type}")


def test_submissions_after_the_returned_columns_changed_type_are_answered(hmac_default_tenant, submit):
    assert submit(signed(make_pcs())).status_code == 200  # the insert is now prepared on this connection
    pcs = signed(make_pcs())
    _alter("text")
    try:
        first = submit(pcs)
        assert first.status_code == 200 and first.json()["dedup"] is False
        again = submit(pcs)  # the stored row comes back through the changed column
        assert again.status_code == 200 and again.json()["dedup"] is True
    finally:
        connection.close()
        _alter("varchar(64)")
