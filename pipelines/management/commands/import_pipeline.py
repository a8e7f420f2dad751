"""``manage.py import_pipeline FILE``: create or update a pipeline from a JSON/YAML document."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from observability.audit import CommandSurface
from pipelines import services


class Command(CommandSurface, BaseCommand):
    help = (
        "Create or update the pipeline a definition document describes (JSON or YAML, bare "
        "or as get-pipeline output). FILE '-' reads standard input. Prints created, updated "
        "or unchanged with the version; a refused document prints every problem with its "
        "path, one per line, and exits non-zero."
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
            document, metadata = services.document_load(text)
            result = services.pipeline_save(document=document, metadata=metadata)
        except services.DefinitionInvalid as exc:
            errors = [p for p in exc.problems if p.severity == "error"]
            for problem in exc.problems:
                self.stderr.write(f"{problem.severity}: {problem}")
            raise CommandError(
                f"{file}: refused, {len(errors)} problem{'s' if len(errors) != 1 else ''}"
            ) from exc
        pipeline = result.pipeline
        if result.created:
            outcome = f'created pipeline "{pipeline.name}" (version {pipeline.version})'
        elif result.changed:
            outcome = f'updated pipeline "{pipeline.name}" to version {pipeline.version}'
        else:
            outcome = f'unchanged pipeline "{pipeline.name}" (version {pipeline.version})'
        self.stdout.write(outcome)
        for warning in result.warnings:
            self.stdout.write(f"warning: {warning}")
