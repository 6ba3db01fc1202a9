"""Prepare a local trial: an admin account with a generated password, the trial's settings, where to go."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from flk_site.env import read_local_settings, write_local_settings

LOCAL_SETTINGS_HEADER = """\
The settings `make run` chose for this checkout's local trial, read by every `manage.py` command (and
celery) started here. A variable set in the environment wins over this file; delete the file to forget them.
Written by `manage.py quickstart`; not for production (DJANGO_DEBUG=1 serves debug pages)."""


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (``var/admin-password``)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class Command(BaseCommand):
    help = (
        "Run once after `migrate` on a trial install (make run does): creates the superuser 'admin' with a "
        "generated password stored in var/admin-password (mode 0600) if there is none, keeps the trial's "
        "settings (DJANGO_DEBUG, DJANGO_ALLOWED_HOSTS, a generated DJANGO_SECRET_KEY) in var/local.env "
        "(mode 0600) so that later manage.py commands need no exports, and prints where to open the service "
        "and where the password is."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="where the service will listen")
        parser.add_argument(
            "--no-save-settings",
            dest="save_settings",
            action="store_false",
            help="do not write var/local.env",
        )

    def handle(self, *args, url: str, save_settings: bool, **options):
        var_dir = Path(settings.VAR_DIR)
        password_file = var_dir / "admin-password"
        User = get_user_model()
        admin = User.objects.filter(username="admin").first()
        if admin is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            if admin is None:
                admin = User.objects.create_superuser("admin", email="", password=password)
            else:
                admin.set_password(password)
                admin.save(update_fields=["password"])
            password_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
        if admin.check_password(password_file.read_text().strip()):
            login = f"Log in as 'admin' with the password in {_shown(password_file)}  (cat {_shown(password_file)})"
        else:  # changed in the admin since: the file is no longer the password, and printing it would mislead
            login = (
                f"Log in as 'admin' with the password you set ({_shown(password_file)} holds the first one, "
                "no longer valid; `python manage.py changepassword admin` sets a new one)"
            )
        lines = [
            "",
            "FLK verifier is starting.",
            f"  API:          {url}/v1/pcs/submit   (docs: {url}/api/docs/)",
            f"  Admin:        {url}/admin/",
            f"  Review queue: {url}/review/",
            f"  {login}",
        ]
        if save_settings:
            local_file = Path(settings.LOCAL_SETTINGS_FILE)
            kept = read_local_settings(local_file)
            values = {
                "DJANGO_DEBUG": "1" if settings.DEBUG else "0",
                "DJANGO_ALLOWED_HOSTS": ",".join(settings.ALLOWED_HOSTS),
                # Its own key rather than the development key every checkout shares; kept across runs so
                # that logins survive a restart.
                "DJANGO_SECRET_KEY": kept.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
            }
            write_local_settings(local_file, values, header=LOCAL_SETTINGS_HEADER)
            lines.append(
                f"  Settings:     {_shown(local_file)} (DJANGO_DEBUG={values['DJANGO_DEBUG']}, "
                f"DJANGO_ALLOWED_HOSTS={values['DJANGO_ALLOWED_HOSTS']}), read by `python manage.py ...` here"
            )
        self.stdout.write("\n".join([*lines, ""]))
