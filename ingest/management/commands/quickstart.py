"""Prepare a local trial: an admin account with a generated password, and how to reach the service."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run once after `migrate` on a trial install (make run does): creates the superuser 'admin' with a "
        "generated password stored in var/admin-password (mode 0600) if there is none, and prints where "
        "to open the service and how to log in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="where the service will listen")

    def handle(self, *args, url: str, **options):
        password_file = Path(settings.VAR_DIR) / "admin-password"
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
        password = password_file.read_text().strip()
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "FLK verifier is starting.",
                    f"  API:          {url}/v1/pcs/submit   (docs: {url}/api/docs/)",
                    f"  Admin:        {url}/admin/",
                    f"  Review queue: {url}/review/",
                    f"  Log in as 'admin' with password {password}  (stored in {password_file})",
                    "",
                ]
            )
        )
