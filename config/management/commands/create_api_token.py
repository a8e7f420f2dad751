"""Create an API token for a user and print it (once: only its digest is stored).

Replaces DRF's ``drf_create_token``. ``--days`` sets its lifetime (default
``CONVEYOR_TOKEN_DAYS``; 0: no expiry); ``--revoke`` deletes every token of the user.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.api_auth import token_create, tokens_revoke


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it once (or --revoke its tokens)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=float, default=None,
                            help="lifetime in days (default CONVEYOR_TOKEN_DAYS; 0: no expiry)")
        parser.add_argument("--revoke", action="store_true",
                            help="revoke every token of the user instead")

    def handle(self, *args, username, days, revoke, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f'No user is named "{username}".')
        if revoke:
            count = tokens_revoke(user=user)
            self.stdout.write(f"Revoked {count} token(s) of {username}.")
            return
        if days is not None and days < 0:
            raise CommandError("--days must be 0 (no expiry) or more.")
        row, key = token_create(user=user, days=days)
        expiry = row.expiry.isoformat() if row.expiry else "never"
        self.stderr.write(f"Token for {username} (expires {expiry}); shown only now:")
        self.stdout.write(key)
