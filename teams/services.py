"""Writes of pipeline groups: create, change (description and roles), delete.

Every surface (REST, admin) calls these; each change is one transaction with its
audit entry (``group.roles``). Who may call them is the surface's question, asked
of ``teams.access`` (administrators create and delete groups; a group's owners
change it).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from observability.audit import audit_record
from observability.models import AuditAct
from teams.choices import DEFAULT_GRANTS, DEFAULT_GROUP, Role
from teams.models import PipelineGroup, RoleGrant


class GroupInvalid(Exception):
    """The group's body was refused: ``problems`` is a list of (JSON path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


class GroupInUse(Exception):
    """The group still holds pipelines (a 409)."""


@dataclass(frozen=True)
class Grant:
    role: str
    user: object | None = None
    group: Group | None = None

    def as_dict(self) -> dict:
        holder = ({"user": self.user.get_username()} if self.user is not None
                  else {"group": self.group.name})
        return {"role": self.role, **holder}


def default_group() -> PipelineGroup:
    """The group pipelines go into when none is named; made (with its grants to the
    global role groups, as the migration makes it) if it is missing."""
    group = PipelineGroup.objects.filter(name=DEFAULT_GROUP).first()
    if group is not None:
        return group
    with transaction.atomic():
        group, created = PipelineGroup.objects.get_or_create(
            name=DEFAULT_GROUP, defaults={"description": "Pipelines not put in another group."})
        if created:
            for django_group, role in DEFAULT_GRANTS:
                holder, _ = Group.objects.get_or_create(name=django_group)
                RoleGrant.objects.get_or_create(pipeline_group=group, role=role, group=holder)
    return group


def default_group_id() -> int:
    """``Pipeline.group``'s default (a pipeline made without a group: the default one)."""
    return default_group().pk


def grants_parse(roles, *, path: str = "roles") -> tuple[list[Grant], list[tuple[str, str]]]:
    """The grants a body's ``roles`` names, and every problem at its JSON path."""
    problems: list[tuple[str, str]] = []
    grants: list[Grant] = []
    if not isinstance(roles, list):
        return [], [(path, "must be a list of {\"role\", \"user\"} or {\"role\", \"group\"}")]
    User = get_user_model()
    names = [r.get("user") for r in roles if isinstance(r, dict)]
    users = {u.get_username(): u for u in User.objects.filter(
        **{f"{User.USERNAME_FIELD}__in": [n for n in names if isinstance(n, str)]})}
    group_names = [r.get("group") for r in roles if isinstance(r, dict)]
    groups = {g.name: g for g in Group.objects.filter(
        name__in=[n for n in group_names if isinstance(n, str)])}
    seen = set()
    for i, item in enumerate(roles):
        at = f"{path}[{i}]"
        if not isinstance(item, dict):
            problems.append((at, "must be an object"))
            continue
        for key in sorted(set(item) - {"role", "user", "group"}):
            problems.append((f"{at}.{key}", "unknown field; use role, and user or group"))
        role = item.get("role")
        if role not in Role.values:
            problems.append((f"{at}.role", f"unknown role {role!r}; one of "
                             + ", ".join(Role.values)))
        has_user, has_group = "user" in item, "group" in item
        if has_user and has_group:
            problems.append((at, "names both a user and a group; a grant is to one of them"))
            continue
        if not has_user and not has_group:
            problems.append((at, "names neither a user nor a group"))
            continue
        key = "user" if has_user else "group"
        value = item[key]
        known = users if has_user else groups
        if not isinstance(value, str) or not value:
            problems.append((f"{at}.{key}", "must be a name"))
            continue
        if value not in known:
            kind = "user" if has_user else "Django group"
            problems.append((f"{at}.{key}", f'no {kind} is named "{value}"'))
            continue
        if (role, key, value) in seen:
            problems.append((at, f"repeats the {role} grant to {key} {value!r}"))
            continue
        seen.add((role, key, value))
        if role in Role.values:
            grants.append(Grant(role=role, user=known[value] if has_user else None,
                                group=None if has_user else known[value]))
    return grants, problems


def group_grants(group: PipelineGroup) -> list[dict]:
    """The group's roles as the API shows them."""
    return [{"role": g.role, **({"user": g.user.get_username()} if g.user_id
                                else {"group": g.group.name})}
            for g in group.grants.select_related("user", "group").order_by("pk")]


def pipeline_group_save(*, name: str, description: str = "", roles: list | None = None,
                        group: PipelineGroup | None = None, user=None) -> PipelineGroup:
    """Create a group (``group`` None) or change ``group``: its description and, when
    ``roles`` is given, replace its grants. Refuses with ``GroupInvalid`` listing every
    problem at its path; records ``group.roles`` in the audit trail."""
    problems: list[tuple[str, str]] = []
    if not isinstance(name, str) or not PipelineGroup._meta.get_field("name").validators[
            0].regex.fullmatch(name or ""):
        problems.append(("name", "use 1 to 100 characters: letters, digits and . @ _ -"))
    elif group is None and PipelineGroup.objects.filter(name=name).exists():
        problems.append(("name", f'a pipeline group is already named "{name}"'))
    elif group is not None and name != group.name:
        problems.append(("name", f'"{name}" does not match the group being changed, '
                         f'"{group.name}"; renaming is not supported'))
    if not isinstance(description, str):
        problems.append(("description", "must be a string"))
    grants: list[Grant] = []
    if roles is not None:
        grants, more = grants_parse(roles)
        problems += more
    if problems:
        raise GroupInvalid(problems)
    with transaction.atomic():
        created = group is None
        if created:
            group = PipelineGroup.objects.create(name=name, description=description)
        elif description != group.description:
            group.description = description
            group.save(update_fields=["description", "updated_at"])
        before = group_grants(group)
        if roles is not None:
            group.grants.all().delete()
            RoleGrant.objects.bulk_create([
                RoleGrant(pipeline_group=group, role=g.role, user=g.user, group=g.group)
                for g in grants])
        pipeline_group_audit(group=group, before=before, user=user,
                             change="create" if created else "update")
    return group


def pipeline_group_audit(*, group: PipelineGroup, before: list[dict], user,
                         change: str) -> None:
    """Record a group's change (``group.roles``) when it was made or its roles changed."""
    after = group_grants(group)
    if change == "create" or before != after:
        audit_record(action=AuditAct.GROUP_ROLES, user=user, detail={
            "group": group.name, "change": change, "before": before, "after": after})


def pipeline_group_delete(*, group: PipelineGroup, user=None) -> None:
    """Delete an empty group; ``GroupInUse`` if pipelines are still in it."""
    with transaction.atomic():
        held = list(group.pipelines.order_by("name").values_list("name", flat=True)[:6])
        if held:
            shown = ", ".join(held[:5]) + (", …" if len(held) > 5 else "")
            raise GroupInUse(f'Pipeline group "{group.name}" still holds pipelines ({shown}): '
                             "move them to another group first.")
        audit_record(action=AuditAct.GROUP_ROLES, user=user, detail={
            "group": group.name, "change": "delete", "before": group_grants(group),
            "after": []})
        group.delete()
