"""manage.py quickstart: says where the admin password is (never a copy that may be stale) and keeps the settings."""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from flk_site.env import read_local_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.LOCAL_SETTINGS_FILE = tmp_path / "local.env"
    return tmp_path


def quickstart() -> str:
    out = StringIO()
    call_command("quickstart", "--url", "http://127.0.0.1:8000", stdout=out)
    return out.getvalue()


def test_it_names_the_password_file_and_never_prints_the_password(var_dir):
    printed = quickstart()
    password = (var_dir / "admin-password").read_text().strip()
    assert stat.S_IMODE((var_dir / "admin-password").stat().st_mode) == 0o600
    assert f"Log in as 'admin' with the password in {var_dir / 'admin-password'}" in printed
    assert password not in printed
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_a_password_changed_since_is_not_passed_off_as_the_stored_one(var_dir):
    quickstart()
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-in-the-admin-1")
    admin.save()
    printed = quickstart()
    assert "holds the first one, no longer valid; `python manage.py changepassword admin` sets a new one" in printed
    assert admin.check_password("changed-in-the-admin-1")  # the run left the changed password alone


def test_the_trial_settings_are_kept_owner_only_with_a_secret_kept_across_runs(var_dir, settings):
    settings.DEBUG, settings.ALLOWED_HOSTS = True, ["10.0.0.5", "127.0.0.1", "localhost"]
    quickstart()
    local = var_dir / "local.env"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    first = read_local_settings(local)
    assert first["DJANGO_DEBUG"] == "1" and first["DJANGO_ALLOWED_HOSTS"] == "10.0.0.5,127.0.0.1,localhost"
    assert len(first["DJANGO_SECRET_KEY"]) >= 50
    quickstart()
    assert read_local_settings(local)["DJANGO_SECRET_KEY"] == first["DJANGO_SECRET_KEY"]
