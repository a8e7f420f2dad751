"""Reads of definitions that every surface and runner shares."""

from __future__ import annotations

from pipelines.models import BuildProject


def build_project_get(name: str) -> BuildProject | None:
    """The build project called ``name``, or None."""
    return BuildProject.objects.filter(name=name).first()
