"""``manage.py create_access_key USER``: make an access key and print its secret, once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from awsapi.services import access_key_create
from observability.audit import CommandSurface


class Command(CommandSurface, BaseCommand):
    help = ("Create an access key for USER for the AWS-compatible endpoint (/aws/). "
            "The secret is printed now and cannot be shown again.")

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f'no user named "{username}"') from None
        key, secret = access_key_create(user=user)
        self.stdout.write(f"AWS_ACCESS_KEY_ID={key.access_key_id}\n"
                          f"AWS_SECRET_ACCESS_KEY={secret}\n")
        self.stderr.write("Keep the secret now: it is stored encrypted and never shown again.")
