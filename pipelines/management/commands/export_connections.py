"""``manage.py export_connections``: print every connection, without credentials."""

from django.core.management.base import BaseCommand

from pipelines import documents, services


class Command(BaseCommand):
    help = ("Print every connection as an import_connections document ({connections: [...]}), "
            "in JSON (default) or YAML. Credentials are never printed: each entry says which "
            "kind is stored (credential: token, ssh_key or none).")

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "yaml"], default="json")

    def handle(self, *args, format: str, **options):
        self.stdout.write(documents.dump(services.connection_export_all(), format), ending="")
