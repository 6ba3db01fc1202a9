"""Logins are throttled per user name and per client address (django-axes): past the limit a login is
refused with 429 without hashing a password, even with the right password, and the lockout shows in admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher

from review.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"


@pytest.fixture
def attempt(client):
    def _attempt(username: str, password: str, address: str = "192.0.2.10"):
        return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)

    return _attempt


@pytest.fixture
def hashings(monkeypatch):
    """How many times a password was hashed or checked (the test settings' hasher)."""
    count = {"n": 0}
    for name in ("encode", "verify"):
        real = getattr(MD5PasswordHasher, name)

        def counted(self, *args, _real=real, **kwargs):
            count["n"] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(MD5PasswordHasher, name, counted)
    return count


def test_a_hundred_wrong_passwords_then_the_right_one_is_still_refused(make_user, attempt, settings, hashings):
    make_user("rita")
    limit = settings.AXES_FAILURE_LIMIT
    answers = [attempt("rita", f"guess-{n}").status_code for n in range(limit)]
    assert answers[: limit - 1] == [200] * (limit - 1)  # the form again, with its error
    hashings["n"] = 0
    assert {attempt("rita", f"guess-{n}").status_code for n in range(limit, 100)} == {429}
    assert hashings["n"] == 0  # a locked-out attempt costs no password hashing
    assert attempt("rita", PASSWORD).status_code == 429


def test_one_address_is_locked_out_whatever_user_names_it_tries(make_user, attempt, settings):
    make_user("rita")
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"nobody-{n}", "guess", address="198.51.100.7")
    assert attempt("rita", PASSWORD, address="198.51.100.7").status_code == 429
    assert attempt("rita", PASSWORD, address="198.51.100.8").status_code == 302  # another address logs in


def test_one_user_name_is_locked_out_from_every_address(make_user, attempt, settings):
    make_user("rita")
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt("rita", "guess", address=f"203.0.113.{n}")
    assert attempt("rita", PASSWORD, address="203.0.113.200").status_code == 429


def test_lockouts_are_listed_in_admin(make_user, attempt, admin_client, settings):
    make_user("rita")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt("rita", "guess")
    page = admin_client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and "rita" in page.content.decode()


def test_the_ingest_pool_serves_no_login_page(settings):
    import importlib

    from django.test import Client
    from django.urls import clear_url_caches

    import flk_site.urls

    settings.FLK_CONSOLE_PAGES = False
    try:
        importlib.reload(flk_site.urls)
        clear_url_caches()
        client = Client()
        assert client.post(LOGIN, {"username": "x", "password": "y"}).status_code == 404
        assert client.get("/admin/").status_code == 404 and client.get("/review/").status_code == 404
        assert client.get("/healthz").status_code == 200
    finally:
        settings.FLK_CONSOLE_PAGES = True
        importlib.reload(flk_site.urls)
        clear_url_caches()
