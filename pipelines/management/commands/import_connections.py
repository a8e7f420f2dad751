"""``manage.py import_connections FILE``: create or update connections from a document."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines import documents, services


class Command(BaseCommand):
    help = (
        "Create or update connections from a JSON or YAML file: {connections: [{name, "
        "provider, baseUrl, arns, username, token | sshKey}]} as export_connections prints "
        "it, or the output of `aws codeconnections list-connections` (name, ARN and "
        "provider are taken; the public forge is the base URL). An existing connection "
        "keeps its credential unless the entry gives one. All or nothing: a refused file "
        "prints every problem with its path and changes nothing. FILE '-' reads standard "
        "input."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .json or .yaml file, or - for standard input")

    def handle(self, *args, file: str, **options):
        if file == "-":
            text = sys.stdin.buffer.read()
        else:
            try:
                text = Path(file).read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        try:
            data = documents.parse_text(text)
            done = services.connection_import(data=data)
        except documents.DocumentError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        except services.ConnectionInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(f"error: {problem}")
            raise CommandError(f"{file}: refused, nothing changed") from exc
        for connection, created in done:
            what = "created" if created else "updated"
            kind = connection.credential_kind or "no"
            self.stdout.write(f'{what} connection "{connection.name}" ({connection.provider}, '
                              f"{connection.base_url}, {kind} credential)")
