"""``manage.py import_build_project FILE``: create or update a build project from its document."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines import documents, services


class Command(BaseCommand):
    help = (
        "Create or update the build project a JSON/YAML document describes (Conveyor's "
        "export, or one project of `aws codebuild batch-get-projects`). FILE '-' reads "
        "standard input. A refused document prints every problem with its path and exits "
        "non-zero; AWS-only fields are named as warnings."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .json or .yaml file, or - for standard input")

    def handle(self, *args, file: str, **options):
        try:
            text = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        try:
            document = documents.parse_text(text)
            result = services.build_project_save(document=document)
        except documents.DocumentError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        except services.BuildProjectInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(f"{problem.severity}: {problem}")
            count = len([p for p in exc.problems if p.severity == "error"])
            raise CommandError(f"{file}: refused, {count} problem{'s' if count != 1 else ''}"
                               ) from exc
        verb = "created" if result.created else "updated"
        self.stdout.write(f'{verb} build project "{result.project.name}"')
        for warning in result.warnings:
            self.stdout.write(f"warning: {warning}")
