"""``manage.py export_build_project NAME``: print a build project's document."""

from django.core.management.base import BaseCommand, CommandError

from pipelines import documents, selectors, services


class Command(BaseCommand):
    help = ("Print a build project's document in JSON (default) or YAML; "
            "import_build_project reads it back unchanged.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--format", choices=["json", "yaml"], default="json")

    def handle(self, *args, name: str, format: str, **options):
        project = selectors.build_project_get(name)
        if project is None:
            raise CommandError(f'no build project is named "{name}"')
        self.stdout.write(documents.dump(services.build_project_export(project), format),
                          ending="")
