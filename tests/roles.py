"""Re-create the role groups that the data migrations make.

A transactional test (``transactional_db``, ``live_server``, browser tests) ends
with a flush of every table, which removes the groups and their permissions that
the migrations created; tests that run after it in the same database would find
no groups. Fixtures that give personas their groups call ``ensure_role_groups``
first. The group contents are read from the migrations themselves, so there is
one list of what each role may do.
"""

import importlib

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

_GRANTS = [
    ("pipelines", "pipelines.migrations.0002_groups"),
    ("pipelines", "pipelines.migrations.0004_build_project_groups"),
    ("executions", "executions.migrations.0002_groups"),
    ("approvals", "approvals.migrations.0002_groups"),
    ("jobs", "jobs.migrations.0002_action_type_roles"),
]
ROLES = ("viewers", "operators", "owners", "reviewers")


def ensure_role_groups() -> None:
    if Group.objects.filter(name__in=ROLES, permissions__isnull=False).distinct().count() == len(
        ROLES
    ):
        return
    for label, _ in _GRANTS:
        create_permissions(apps.get_app_config(label), verbosity=0)
    for label, module_name in _GRANTS:
        module = importlib.import_module(module_name)
        for name, codenames in module.GROUPS.items():
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.add(*Permission.objects.filter(
                content_type__app_label=label, codename__in=codenames))
    approvals = importlib.import_module("approvals.migrations.0002_groups")
    reviewers, _ = Group.objects.get_or_create(name="reviewers")
    reviewers.permissions.add(*Permission.objects.filter(
        content_type__app_label="approvals", codename__in=approvals.DECIDE))
    for label, codenames in approvals.LOOK_AROUND.items():
        reviewers.permissions.add(*Permission.objects.filter(
            content_type__app_label=label, codename__in=codenames))
