"""Reads of definitions that every surface and runner shares."""

from __future__ import annotations

from fnmatch import fnmatchcase

from pipelines.models import BuildProject, Connection, ConnectionArn


def build_project_get(name: str) -> BuildProject | None:
    """The build project called ``name``, or None."""
    return BuildProject.objects.filter(name=name).first()


def connection_for(key: str) -> Connection | None:
    """The connection that answers to ``key`` (a ConnectionArn or ``codecommit:<repo>``).

    An exact entry wins; otherwise the longest pattern (``*`` matches any run of
    characters) that matches, so ``…:connection/abc`` can be carved out of
    ``…:connection/*``. None when no connection answers.
    """
    if not key:
        return None
    exact = ConnectionArn.objects.filter(arn=key).select_related("connection").first()
    if exact is not None:
        return exact.connection
    # Patterns are few (one or two per account); matching them in Python keeps
    # the rule identical on SQLite and PostgreSQL.
    patterns = ConnectionArn.objects.filter(arn__contains="*").select_related("connection")
    best = max((row for row in patterns if fnmatchcase(key, row.arn)),
               key=lambda row: len(row.arn.replace("*", "")), default=None)
    return best.connection if best is not None else None


def codecommit_key(repository_name: str) -> str:
    """What a CodeCommit action's connection answers to: ``codecommit:<RepositoryName>``."""
    return f"codecommit:{repository_name}"
