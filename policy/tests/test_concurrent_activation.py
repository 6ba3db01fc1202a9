"""Concurrent activations serialise on row locks: every one succeeds and exactly one version ends active."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from flk_site.testing import ensure_defaults
from policy.models import VerifyParams
from policy.versions import activate_version, create_draft


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_leave_exactly_one_version_active():
    ensure_defaults()
    base = VerifyParams.objects.get(is_active=True).param_values()
    drafts = [create_draft({**base, "tol_d": 0.10 + n / 100}, f"candidate {n}", None) for n in range(6)]
    barrier = threading.Barrier(len(drafts))
    failures: list[BaseException] = []

    def activate(pk: int) -> None:
        try:
            barrier.wait()
            activate_version(pk, None)
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=activate, args=(d.pk,)) for d in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    active = list(VerifyParams.objects.filter(is_active=True))
    assert len(active) == 1 and active[0].pk in {d.pk for d in drafts}
    assert all(v.activated_at is not None for v in VerifyParams.objects.filter(pk__in=[d.pk for d in drafts]))


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_get_distinct_version_numbers():
    ensure_defaults()
    base = VerifyParams.objects.get(is_active=True).param_values()
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def save(n: int) -> None:
        try:
            barrier.wait()
            create_draft({**base, "tol_d": 0.10 + n / 100}, f"draft {n}", None)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(VerifyParams.objects.values_list("version", flat=True)) == [1, 2, 3, 4, 5]
