"""Make sure an administrator exists, and say how to sign in.

With ``DJANGO_SUPERUSER_USERNAME`` / ``DJANGO_SUPERUSER_PASSWORD`` set, that
account is created (or its password reset to it). Otherwise an ``admin``
account gets a generated password, kept in ``var/admin_password`` (git-ignored)
so that every ``make run`` prints the same credentials.
"""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the superuser if missing and print its credentials."

    def handle(self, *args, **options):
        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", f"{username}@localhost")
        from_env = password is not None
        if not from_env:
            path = settings.VAR_DIR / "admin_password"
            if not path.exists():
                path.write_text(secrets.token_urlsafe(12))
                path.chmod(0o600)
            password = path.read_text().strip()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_superuser(username, email, password)
        elif from_env or not user.has_usable_password():
            user.set_password(password)
            user.save(update_fields=["password"])
        # A superuser has every permission; the groups make the roles visible.
        user.groups.add(*Group.objects.filter(name__in=["owners", "operators", "viewers"]))
        shown = "(from DJANGO_SUPERUSER_PASSWORD)" if from_env else password
        port = os.environ.get("PORT", "8000")
        self.stdout.write(f"Sign in at http://127.0.0.1:{port}/ as {username} / {shown}")
