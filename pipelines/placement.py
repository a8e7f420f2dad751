"""Which pipeline group a saved pipeline goes into (``metadata.group``), and whether the
saver may put it there: ``pipelines.services.pipeline_save`` asks these two."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from pipelines.models import Pipeline
from pipelines.validation import Problem
from teams.access import group_allows
from teams.choices import Act
from teams.models import PipelineGroup
from teams.services import default_group


def group_named(metadata: dict | None, user) -> tuple[str | None, list[Problem]]:
    """The group name a wrapper's ``metadata.group`` gives (None: not given); one that
    ``user`` may not see is reported as not existing."""
    given = (metadata or {}).get("metadata")
    if not isinstance(given, dict) or "group" not in given:
        return None, []
    name = given["group"]
    if not isinstance(name, str) or not name:
        return None, [Problem("metadata.group", "must be the name of a pipeline group")]
    group = PipelineGroup.objects.filter(name=name).first()
    if group is None or (user is not None and not group_allows(user, group.pk, Act.VIEW)):
        return None, [Problem("metadata.group", f'no pipeline group is named "{name}"')]
    return name, []


def group_for(pipeline: Pipeline | None, name: str | None, user) -> PipelineGroup:
    """The group the saved pipeline belongs to, checking that ``user`` may put it there."""
    group = (PipelineGroup.objects.get(name=name) if name is not None
             else pipeline.group if pipeline is not None else default_group())
    if user is not None:
        if not group_allows(user, group.pk, Act.OWN):
            raise PermissionDenied(f'You may not put a pipeline in group "{group.name}": '
                                   "it needs the owner role on that group.")
        if pipeline is not None and not group_allows(user, pipeline.group_id, Act.OWN):
            raise PermissionDenied(f'You may not change pipeline "{pipeline.name}": '
                                   "it needs the owner role on its pipeline group.")
    return group
