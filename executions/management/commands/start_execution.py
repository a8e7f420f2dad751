"""``manage.py start_execution NAME [--var k=v ...] [--revision ACTION=REV ...]``.

Starts an execution of the pipeline's current version through
``services.execution_start`` (as the REST API and the dashboard do) and prints
its id and number: ``<pipelineExecutionId> #<number>``, so that a script can
take the first word. The execution's actions go to the workers when the start
commits; this command does not wait for them. With ``--user`` it acts for that
user, who must hold the operator (or owner) role on the pipeline's group
(``teams.access``), as on every other surface; a pipeline they may not view is
reported as not existing.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from executions import services
from executions.errors import ExecutionError, ExecutionInvalid
from observability.audit import CommandSurface
from pipelines.models import Pipeline
from teams.access import pipeline_allows, refusal
from teams.choices import Act


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise CommandError(f"{option} {value!r}: expected NAME=VALUE")
        pairs.append((key, rest))
    return pairs


class Command(CommandSurface, BaseCommand):
    help = (
        "Start an execution of a pipeline and print its id and number. --var overrides a "
        "pipeline variable's default; --revision makes a source action use that revision "
        "(a commit id) instead of the latest."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the pipeline's name")
        parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                            help="a pipeline variable's value (repeatable)")
        parser.add_argument("--revision", action="append", default=[], metavar="ACTION=REV",
                            help="the revision a source action uses (repeatable)")
        parser.add_argument("--client-request-token", default="",
                            help="idempotency token: a repeated start with the same token "
                            "prints the execution it started")
        parser.add_argument("--user", default="", help="the username the execution is "
                            "started by (default: none, the trigger says manage.py)")

    def handle(self, *args, name: str, var: list[str], revision: list[str],
               client_request_token: str, user: str, **options):
        pipeline = Pipeline.objects.filter(name=name).first()
        if pipeline is None:
            raise CommandError(f'No pipeline is named "{name}".')
        starter = None
        if user:
            starter = get_user_model().objects.filter(username=user).first()
            if starter is None:
                raise CommandError(f'No user is named "{user}".')
            if not pipeline_allows(starter, pipeline, Act.VIEW):
                raise CommandError(f'No pipeline is named "{name}".')
            if not pipeline_allows(starter, pipeline, Act.OPERATE):
                raise CommandError(refusal(Act.OPERATE, pipeline.name))
        variables = [{"name": k, "value": v} for k, v in _pairs(var, "--var")]
        revisions = [{"actionName": k, "revisionType": "COMMIT_ID", "revisionValue": v}
                     for k, v in _pairs(revision, "--revision")]
        try:
            execution = services.execution_start(
                pipeline=pipeline, user=starter, variables=variables,
                source_revisions=revisions, client_request_token=client_request_token or None,
                trigger_detail="" if starter else "manage.py start_execution",
            )
        except ExecutionInvalid as exc:
            for path, message in exc.problems:
                self.stderr.write(f"{path}: {message}")
            raise CommandError(exc.detail) from exc
        except ExecutionError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"{execution.execution_id} #{execution.number}")
