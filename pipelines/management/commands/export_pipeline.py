"""``manage.py export_pipeline NAME``: print a pipeline's definition document."""

from django.core.management.base import BaseCommand, CommandError

from pipelines import documents, services
from pipelines.models import Pipeline, PipelineVersion


class Command(BaseCommand):
    help = (
        "Print a pipeline's definition as get-pipeline shows it ({pipeline, metadata}), "
        "in JSON (default) or YAML. import_pipeline reads it back unchanged."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version is this command's "which version of the pipeline", not Django's.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--format", choices=["json", "yaml"], default="json")
        parser.add_argument("--version", type=int, dest="number", metavar="N",
                            help="an earlier version (default: the current one)")

    def handle(self, *args, name: str, format: str, number: int | None, **options):
        try:
            pipeline = Pipeline.objects.get(name=name)
        except Pipeline.DoesNotExist:
            raise CommandError(f'no pipeline is named "{name}"') from None
        try:
            exported = services.pipeline_export(pipeline=pipeline, version=number)
        except PipelineVersion.DoesNotExist:
            raise CommandError(f'pipeline "{name}" has no version {number}') from None
        self.stdout.write(documents.dump(exported, format), ending="")
