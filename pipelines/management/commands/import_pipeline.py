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
        "path, one per line, and exits non-zero. --check saves nothing and prints the "
        "migration report: for every action, whether it runs here, what it needs first "
        "(a connection, a build project) or the nearest way to do it here."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .json or .yaml file, or - for standard input")
        parser.add_argument("--check", action="store_true",
                            help="save nothing; print the migration report")

    def handle(self, *args, file: str, check: bool = False, **options):
        if file == "-":
            text = sys.stdin.buffer.read()
        else:
            try:
                text = Path(file).read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        if check:
            return self.report(file, text)
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

    def report(self, file: str, text: bytes) -> None:
        """Print the migration report; exit non-zero only when the document is refused."""
        try:
            document, _metadata = services.document_load(text)
        except services.DefinitionInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(f"error: {problem}")
            raise CommandError(f"{file}: refused") from exc
        result = services.pipeline_check(document=document)
        for report in result.actions:
            self.stdout.write(f"{report.path} {report.stage_name}/{report.action_name} "
                              f"({report.category} {report.provider}): {report.status_text}")
            if report.status == "runs":
                self.stdout.write(f"    runs as {report.runs_as}")
            for need in report.needs:
                self.stdout.write(f"    needs {need.need}")
                self.stdout.write(f"    how: {need.how}")
            for note in report.notes:
                self.stdout.write(f"    note: {note}")
            if report.nearest:
                self.stdout.write(f"    nearest here: {report.nearest}")
        for problem in result.problems:
            self.stdout.write(f"{problem.severity}: {problem}")
        if not result.valid:
            count = len(services.errors(result.problems))
            raise CommandError(f"{file}: would be refused, {count} "
                               f"problem{'s' if count != 1 else ''}")
        verb = "update" if result.exists else "create"
        blocked = len(services.report_blocking(result.actions))
        self.stdout.write(
            f'would {verb} pipeline "{result.name}": '
            + ("every action can run here" if not blocked else
               f"{blocked} action{'s' if blocked != 1 else ''} cannot run here yet"))
