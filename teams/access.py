"""Who may do what with a pipeline: the one permission function of every surface.

Every surface (REST, the AWS endpoint, the dashboard and its buttons, websockets,
the admin, management commands, approvals, notifications) asks these functions
and nothing else (docs/security.md):

- ``pipeline_allows(user, pipeline, act)`` — may ``user`` do ``act`` (``view``,
  ``operate``, ``review``, ``own``) with ``pipeline``;
- ``pipelines_visible(user)`` — the pipelines ``user`` may view, as a QuerySet;
- ``pipeline_require(user, pipeline, act)`` — raises ``Http404`` when the pipeline
  is not visible (as if it did not exist) and ``PermissionDenied`` when it is
  visible but the act is not allowed;
- ``holds_any_role(user)`` — whether ``user`` may use the pipeline surfaces at all
  (a signed-in user with no role anywhere is refused before any lookup, 403, and
  learns nothing about what exists).

Superusers and members of the Django group "administrators" may do everything.
Anyone else holds the roles their grants give (their own and their Django
groups'), per pipeline group. The grants are read with ONE query the first time
a request asks, then cached on the user object — which lives as long as the
request (or, for a websocket, as long as the socket: a role change applies to
sockets opened after it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Value
from django.http import Http404

from pipelines.models import Pipeline
from teams.choices import ADMINISTRATORS, ALL_ACTS, ROLE_ACTS, Act
from teams.models import RoleGrant

_CACHE = "_pipeline_access"


@dataclass(frozen=True)
class Access:
    """What one user may do: everything (``everything``), or ``acts`` per group id."""

    everything: bool = False
    acts: dict[int, frozenset[str]] = field(default_factory=dict)

    def allows(self, group_id: int | None, act: str) -> bool:
        return self.everything or act in self.acts.get(group_id, ())

    def groups_allowing(self, act: str) -> set[int]:
        return {gid for gid, acts in self.acts.items() if act in acts}


NOBODY = Access()
EVERYTHING = Access(everything=True)


def _read(user) -> Access:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NOBODY
    if user.is_superuser:
        return EVERYTHING
    # One query: the user's own grants, and each of their Django groups (its name,
    # for "administrators") with that group's grants (none: NULLs, a LEFT JOIN).
    own = RoleGrant.objects.filter(user_id=user.pk).order_by().values_list(
        Value(""), "pipeline_group_id", "role")
    via_groups = Group.objects.filter(user__id=user.pk).order_by().values_list(
        "name", "pipeline_roles__pipeline_group_id", "pipeline_roles__role")
    acts: dict[int, set[str]] = {}
    for group_name, pipeline_group_id, role in own.union(via_groups, all=True):
        if group_name == ADMINISTRATORS:
            return EVERYTHING
        if pipeline_group_id is not None:
            acts.setdefault(pipeline_group_id, set()).update(ROLE_ACTS[role])
    return Access(acts={gid: frozenset(a) for gid, a in acts.items()})


def access_of(user) -> Access:
    """``user``'s access, read once per user object (per request)."""
    if user is None:
        return NOBODY
    cached = getattr(user, _CACHE, None)
    if cached is None:
        cached = _read(user)
        setattr(user, _CACHE, cached)
    return cached


def access_forget(user) -> None:
    """Drop the cached access (after the user's grants changed within a request)."""
    if user is not None and hasattr(user, _CACHE):
        delattr(user, _CACHE)


def _check_act(act: str) -> str:
    if act not in ALL_ACTS:
        raise ValueError(f"unknown act {act!r}; one of {sorted(ALL_ACTS)}")
    return act


def is_administrator(user) -> bool:
    """A superuser or a member of "administrators": every act on every group."""
    return access_of(user).everything


def holds_any_role(user) -> bool:
    """Whether ``user`` holds any role anywhere (administrators: yes)."""
    access = access_of(user)
    return access.everything or bool(access.acts)


def group_allows(user, group_id: int | None, act: str) -> bool:
    """May ``user`` do ``act`` with the pipelines of pipeline group ``group_id``."""
    return access_of(user).allows(group_id, _check_act(act))


def pipeline_allows(user, pipeline: Pipeline, act: str) -> bool:
    """May ``user`` do ``act`` (view, operate, review, own) with ``pipeline``."""
    return access_of(user).allows(pipeline.group_id, _check_act(act))


def visible_group_ids(user, act: str = Act.VIEW) -> set[int] | None:
    """The ids of the groups where ``user`` may ``act``; None means every group."""
    access = access_of(user)
    return None if access.everything else access.groups_allowing(_check_act(act))


def pipelines_q(user, act: str = Act.VIEW, prefix: str = "") -> Q:
    """A filter on a model reaching Pipeline through ``prefix`` (e.g. ``"pipeline__"``)
    keeping the rows of pipelines where ``user`` may ``act``."""
    ids = visible_group_ids(user, act)
    return Q() if ids is None else Q(**{f"{prefix}group_id__in": sorted(ids)})


def pipelines_visible(user, act: str = Act.VIEW) -> QuerySet[Pipeline]:
    """The pipelines ``user`` may view (or do ``act`` with)."""
    return Pipeline.objects.filter(pipelines_q(user, act))


def pipeline_require(user, pipeline: Pipeline | None, act: str, *, name: str = "") -> Pipeline:
    """``pipeline`` if ``user`` may ``act`` with it; else ``Http404`` when they may not
    even view it (or it is None) and ``PermissionDenied`` when they may view it."""
    access = access_of(user)
    if pipeline is None or not access.allows(pipeline.group_id, Act.VIEW):
        raise Http404(f'No pipeline is named "{name or getattr(pipeline, "name", "")}".')
    if not access.allows(pipeline.group_id, _check_act(act)):
        raise PermissionDenied(refusal(act, pipeline.name))
    return pipeline


def refusal(act: str, pipeline_name: str) -> str:
    """The message of a refused act."""
    role = {Act.OPERATE: "operator or owner", Act.REVIEW: "reviewer",
            Act.OWN: "owner", Act.VIEW: "viewer"}[act]
    return (f'You may not {act} pipeline "{pipeline_name}": it needs the {role} role '
            "on its pipeline group.")


def users_allowed(pipeline: Pipeline, act: str) -> Q:
    """A filter on User keeping those who may ``act`` with ``pipeline``: its group's
    grants (direct or through a Django group), administrators and superusers."""
    from django.contrib.auth.models import User

    roles = [role for role, acts in ROLE_ACTS.items() if _check_act(act) in acts]
    grants = RoleGrant.objects.filter(pipeline_group_id=pipeline.group_id, role__in=roles)
    members = User.groups.through.objects
    # Subqueries, not joins: a user in two granted groups is one row.
    return (Q(is_superuser=True)
            | Q(pk__in=members.filter(group__name=ADMINISTRATORS).values("user_id"))
            | Q(pk__in=grants.filter(user__isnull=False).values("user_id"))
            | Q(pk__in=members.filter(group_id__in=grants.filter(group__isnull=False)
                                      .values("group_id")).values("user_id")))
