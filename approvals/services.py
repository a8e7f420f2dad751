"""Every operation on approvals: opening, deciding, closing, and what reviewers see.

The dashboard, the inbox page, the signed links, the REST API and the AWS
endpoint call these functions and hold no rules of their own. Completing the
approval action goes through ``executions.services.action_complete``; the
engine's signals (``executions.signals``) close requests whose action ended
some other way (timeout, stop and abandon, docs/semantics.md §10's superseding).

Errors (``approvals.errors``): ``ApprovalForbidden`` (403), ``ApprovalClosed``
(409), ``ApprovalNotFound`` (404), ``ApprovalInvalid`` (400),
``ApprovalLinkInvalid``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals import signals
from approvals.choices import ApprovalStatus, DecisionStatus, DecisionSurface
from approvals.configuration import ApprovalSettings, Reviewers, parse_reviewers
from approvals.errors import (
    ApprovalClosed,
    ApprovalForbidden,
    ApprovalInvalid,
    ApprovalLinkInvalid,
    ApprovalNotFound,
)
from approvals.models import ApprovalDecision, ApprovalLink, ApprovalRequest
from executions import services as execution_services
from executions.choices import ActionExecutionStatus, ExecutionType, StageExecutionStatus
from executions.models import ActionExecution, PipelineExecution, SourceRevision, StageExecution
from observability.audit import audit_record
from observability.models import AuditAct
from teams.access import (
    holds_any_role,
    pipeline_allows,
    pipelines_q,
    users_allowed,
    visible_group_ids,
)
from teams.choices import Act

logger = logging.getLogger("conveyor.approvals")

DECIDE_PERMISSION = "approvals.decide_approvalrequest"
EXPIRED_SUMMARY = "approval expired"
LINK_SALT = "approvals.link"


# --- opening -----------------------------------------------------------------------


def reviewer_keys(reviewers: Reviewers) -> str:
    """The reviewers spec as ",alice,group:release," so SQL can prefilter with LIKE."""
    spec = reviewers.spec()
    return f",{spec}," if spec else ""


def approval_request_open(*, action_execution: ActionExecution, config: ApprovalSettings,
                          token: str) -> ApprovalRequest:
    """Open the request of a Manual approval action that has just started (its runner calls this).

    1. One request per action execution: a repeated call returns the existing one.
    2. ``revision`` is the execution's source revision (a rollback's: its target's).
    3. ``expires_at`` is the action's deadline (the engine fails it then).
    4. The notifications are enqueued once the request is committed.
    5. If the action ended meanwhile (abandoned while starting), the request is
       closed to match at once, so it is never left Pending.
    """
    ae = action_execution
    ex = ae.execution
    revision = _revisions(ex)[:1]
    with transaction.atomic():
        request, created = ApprovalRequest.objects.get_or_create(
            action_execution=ae,
            defaults={
                "execution": ex, "pipeline_id": ex.pipeline_id,
                "pipeline_name": ex.pipeline.name, "stage_name": ae.stage_name,
                "action_name": ae.action_name,
                "custom_data": config.custom_data,
                "external_entity_link": config.external_entity_link[:2000],
                "revision": revision[0].revision_id if revision else "",
                "revision_summary": revision[0].revision_summary if revision else "",
                "required_approvals": config.required_approvals,
                "reviewers": config.reviewers.spec()[:2000],
                "reviewer_keys": reviewer_keys(config.reviewers)[:2000],
                "allow_self_approval": config.allow_self_approval,
                "notification_webhook": config.notification_webhook[:2000],
                "token": token,
                "expires_at": ae.deadline_at,
            },
        )
        if created:
            pk = str(request.pk)
            transaction.on_commit(lambda: signals.approval_requested.send(
                sender=ApprovalRequest, request_pk=pk))
    ae.refresh_from_db(fields=["status", "summary"])
    if ae.status != ActionExecutionStatus.IN_PROGRESS:
        approval_close_for_action(action_execution=ae, status=ae.status, summary=ae.summary)
        request.refresh_from_db()
    return request


def _revisions(ex: PipelineExecution) -> list[SourceRevision]:
    source = ex.rollback_target if (ex.execution_type == ExecutionType.ROLLBACK
                                    and ex.rollback_target_id) else ex
    return list(SourceRevision.objects.filter(execution=source).order_by("id"))


# --- who may decide ------------------------------------------------------------------


def _named(reviewers: Reviewers, user) -> bool:
    if user.get_username() in reviewers.users:
        return True
    return bool(reviewers.groups) and user.groups.filter(name__in=reviewers.groups).exists()


def approval_refusal(*, request: ApprovalRequest, user, status: str | None = None) -> str | None:
    """Why ``user`` may not decide ``request`` (None: they may).

    1. The user needs the reviewer role on the pipeline's group (``teams.access``;
       in the default group the "reviewers" Django group holds it).
    2. A request whose Reviewers is set narrows that to the named users and
       members of the named groups.
    3. Approving needs AllowSelfApproval when the user started the execution
       (rejecting one's own execution is always allowed).
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return "Sign in to decide approvals."
    pipeline = request.execution.pipeline
    if not pipeline_allows(user, pipeline, Act.REVIEW):
        return ("You are not a reviewer: deciding approvals needs the reviewer role on "
                f'pipeline "{pipeline.name}"\'s group ("{pipeline.group.name}").')
    reviewers = parse_reviewers(request.reviewers)
    if not reviewers.anyone and not _named(reviewers, user):
        return f"Only {request.reviewers.replace(',', ', ')} may decide this approval."
    if (status == DecisionStatus.APPROVED and not request.allow_self_approval
            and request.execution.triggered_by_id == user.pk):
        return (f"You started execution #{request.execution.number}: you may not approve it "
                "yourself (AllowSelfApproval is false).")
    return None


def approval_reviewers(*, request: ApprovalRequest) -> QuerySet:
    """The active users to notify: those who may decide, with an email address.

    The person who started the execution is left out unless AllowSelfApproval
    (they may still reject from the inbox).
    """
    # Those holding the reviewer role on the pipeline's group (teams.access).
    users = get_user_model().objects.filter(
        users_allowed(request.execution.pipeline, Act.REVIEW), is_active=True).exclude(email="")
    reviewers = parse_reviewers(request.reviewers)
    if not reviewers.anyone:
        users = users.filter(Q(username__in=reviewers.users)
                             | Q(groups__name__in=reviewers.groups)).distinct()
    if not request.allow_self_approval and request.execution.triggered_by_id:
        users = users.exclude(pk=request.execution.triggered_by_id)
    return users.order_by("username")


def approval_may_decide(*, request: ApprovalRequest, user) -> bool:
    """True if ``user`` is one of the request's reviewers (may approve or reject it)."""
    return approval_refusal(request=request, user=user) is None


# --- deciding ------------------------------------------------------------------------


class _ActionEnded(Exception):
    """The action had ended before the decision could complete it: undo the decision."""


def approval_decide(*, request: ApprovalRequest, user, status: str, summary: str = "",
                    surface: str) -> ApprovalDecision:
    """Record one reviewer's decision; when it settles the request, complete the action.

    1. ``status`` is Approved or Rejected (else ApprovalInvalid).
    2. Only reviewers (``approval_refusal``) may decide: ApprovalForbidden (403),
       nothing recorded.
    3. A request that is closed, past its expiry, or already decided by this
       reviewer is ApprovalClosed (409).
    4. In one transaction: claim the request row (a compare-and-set on Pending,
       which also serializes concurrent deciders), insert the decision, and
       - one rejection closes it Rejected; the action Fails with the summary;
       - the RequiredApprovals-th approval closes it Approved; the action Succeeds.
       Two reviewers deciding a 1-of-N request at once: one wins the
       compare-and-set, the other gets ApprovalClosed.
    5. If the action had already ended (superseded, abandoned or timed out a
       moment before), nothing is recorded: the request is closed to match and
       ApprovalClosed is raised.
    """
    if status not in DecisionStatus.values:
        raise ApprovalInvalid(f'"{status}" is not a decision: use Approved or Rejected.')
    if surface not in DecisionSurface.values:
        raise ApprovalInvalid(f'"{surface}" is not a decision surface.')
    summary = (summary or "").strip()[:2000]
    refusal = approval_refusal(request=request, user=user, status=status)
    if refusal:
        raise ApprovalForbidden(refusal)
    request.refresh_from_db()
    _ensure_open(request)
    now = timezone.now()
    try:
        with transaction.atomic():
            # The compare-and-set that claims the row: on PostgreSQL the UPDATE
            # holds the row lock until commit, so a concurrent decider waits here
            # and then finds the request no longer Pending (0 rows); SQLite's
            # IMMEDIATE transactions serialize writers anyway.
            if not ApprovalRequest.objects.filter(
                    pk=request.pk, status=ApprovalStatus.PENDING).update(
                    status=ApprovalStatus.PENDING):
                request.refresh_from_db()
                _ensure_open(request)
                raise ApprovalClosed("This approval has just been closed.")
            earlier = ApprovalDecision.objects.filter(request=request, user=user).first()
            if earlier is not None:
                raise ApprovalClosed(
                    f"You already {earlier.status.lower()} this request "
                    f"at {earlier.decided_at:%Y-%m-%d %H:%M} UTC.")
            try:
                with transaction.atomic():
                    decision = ApprovalDecision.objects.create(
                        request=request, user=user, username=user.get_username(),
                        status=status, summary=summary, surface=surface, decided_at=now)
            except IntegrityError:
                raise ApprovalClosed("You already decided this request.") from None
            audit_record(action=AuditAct.APPROVAL_APPROVE if status == DecisionStatus.APPROVED
                         else AuditAct.APPROVAL_REJECT, user=user, execution=request.execution,
                         stage=request.stage_name, reason=summary,
                         detail={"actionName": request.action_name, "approvalId": str(request.pk),
                                 "via": surface})
            outcome = _settle(request, decision)
            if outcome is not None:
                to, action_summary = outcome
                _close(request, to, action_summary, now=now)
                if not execution_services.action_complete(
                        action_execution=request.action_execution,
                        succeeded=to == ApprovalStatus.APPROVED, summary=action_summary):
                    raise _ActionEnded()
    except _ActionEnded:
        ae = ActionExecution.objects.get(pk=request.action_execution_id)
        approval_close_for_action(action_execution=ae, status=ae.status, summary=ae.summary)
        request.refresh_from_db()
        raise ApprovalClosed(_closed_detail(request)) from None
    request.refresh_from_db()
    return decision


def _settle(request: ApprovalRequest, decision: ApprovalDecision) -> tuple[str, str] | None:
    """The request's outcome after ``decision`` (None: more approvals needed)."""
    if decision.status == DecisionStatus.REJECTED:
        return ApprovalStatus.REJECTED, decision.summary or f"Rejected by {decision.username}"
    approvers = list(ApprovalDecision.objects.filter(
        request=request, status=DecisionStatus.APPROVED).order_by("decided_at", "id")
        .values_list("username", flat=True))
    if len(approvers) < request.required_approvals:
        return None
    text = f"Approved by {', '.join(approvers)}"
    return ApprovalStatus.APPROVED, f"{text}: {decision.summary}" if decision.summary else text


def _ensure_open(request: ApprovalRequest) -> None:
    if request.status != ApprovalStatus.PENDING:
        raise ApprovalClosed(_closed_detail(request))
    if request.expires_at is not None and timezone.now() >= request.expires_at:
        raise ApprovalClosed(
            f"This approval expired at {request.expires_at:%Y-%m-%d %H:%M} UTC.")


def _closed_detail(request: ApprovalRequest) -> str:
    reason = f": {request.status_summary}" if request.status_summary else ""
    return f"This approval is closed ({request.status}{reason})."


def _close(request: ApprovalRequest, to: str, summary: str, *, now: datetime | None = None,
           superseded_by: PipelineExecution | None = None) -> bool:
    """Compare-and-set Pending → ``to``; False if it was already closed (someone else won)."""
    if to not in ApprovalStatus.TRANSITIONS[ApprovalStatus.PENDING]:
        raise ValueError(f"an approval request cannot close as {to}")
    now = now or timezone.now()
    fields = {"status": to, "status_summary": (summary or "")[:2000], "closed_at": now}
    if superseded_by is not None:
        fields["superseded_by"] = superseded_by
    if ApprovalRequest.objects.filter(pk=request.pk, status=ApprovalStatus.PENDING).update(
            **fields) != 1:
        return False
    for key, value in fields.items():
        setattr(request, key, value)
    return True


def approval_close_for_action(*, action_execution: ActionExecution, status: str, summary: str,
                              superseded_by: PipelineExecution | None = None) -> bool:
    """Close the pending request of an approval action that ended without a decision.

    Called from the engine's signals (after its transaction commits):
    Abandoned with a newer execution → Superseded (the summary names it);
    Abandoned otherwise (stop and abandon) → Abandoned; Failed with
    "approval expired" (the action's timeout) → Expired; any other end →
    Abandoned, naming it. True if this call closed the request.
    """
    request = ApprovalRequest.objects.filter(
        action_execution_id=action_execution.pk, status=ApprovalStatus.PENDING).first()
    if request is None:
        return False
    if status == ActionExecutionStatus.ABANDONED:
        to = ApprovalStatus.SUPERSEDED if superseded_by is not None else ApprovalStatus.ABANDONED
    elif status == ActionExecutionStatus.FAILED and summary == EXPIRED_SUMMARY:
        to = ApprovalStatus.EXPIRED
    elif status == ActionExecutionStatus.IN_PROGRESS:
        return False
    else:
        to = ApprovalStatus.ABANDONED
        summary = f"The action ended {status} without a decision here: {summary}"
    closed = _close(request, to, summary, superseded_by=superseded_by)
    if closed:
        logger.info("approval %s closed %s: %s", request.pk, to, summary)
    return closed


def approval_decide_by_token(*, pipeline_name: str, stage_name: str, action_name: str,
                             token: str, user, status: str, summary: str = "",
                             surface: str = DecisionSurface.AWS) -> ApprovalDecision:
    """CodePipeline's PutApprovalResult: decide the request that holds ``token``.

    The token is the one GetPipelineState shows for the waiting action. A
    token that matches no request of that pipeline/stage/action is
    ApprovalNotFound (AWS: InvalidApprovalTokenException); a closed request is
    ApprovalClosed (ApprovalAlreadyCompletedException); then as ``approval_decide``.
    """
    request = (ApprovalRequest.objects.select_related("execution", "action_execution")
               .filter(pipeline_name=pipeline_name, stage_name=stage_name,
                       action_name=action_name, token=token).first()) if token else None
    if request is None or not secrets.compare_digest(request.token, token):
        raise ApprovalNotFound(
            f'No approval of "{pipeline_name}" / "{stage_name}" / "{action_name}" '
            "has this token.")
    return approval_decide(request=request, user=user, status=status, summary=summary,
                           surface=surface)


# --- signed links ----------------------------------------------------------------------


def link_max_age() -> timedelta:
    """The longest a signed link lives (``CONVEYOR_APPROVAL_LINK_MAX_AGE`` s, default 7 days)."""
    return timedelta(seconds=int(getattr(django_settings, "CONVEYOR_APPROVAL_LINK_MAX_AGE",
                                         7 * 24 * 3600)))


def approval_link_create(*, request: ApprovalRequest, user) -> ApprovalLink:
    """A single-use link row for one reviewer; it expires with the request (or max age)."""
    expires = timezone.now() + link_max_age()
    if request.expires_at is not None:
        expires = min(expires, request.expires_at)
    return ApprovalLink.objects.create(nonce=secrets.token_urlsafe(24), request=request,
                                       user=user, expires_at=expires)


def link_sign(link: ApprovalLink, status: str) -> str:
    """The signed value of an Approve or Reject link (``django.core.signing``)."""
    return signing.dumps({"n": link.nonce, "d": status}, salt=LINK_SALT)


@dataclass
class LinkTarget:
    """What a valid signed link asks: its link row, the decision, and the request."""

    link: ApprovalLink
    status: str
    request: ApprovalRequest = field(init=False)

    def __post_init__(self):
        self.request = self.link.request


def approval_link_resolve(*, signed: str, user) -> LinkTarget:
    """What a signed link asks (request and decision) — reading it decides nothing.

    ApprovalLinkInvalid when the signature is wrong, the link is older than its
    max age or past the request's expiry, already used, or addressed to
    another reviewer than the signed-in ``user``.
    """
    try:
        payload = signing.loads(signed, salt=LINK_SALT,
                                max_age=link_max_age().total_seconds())
    except signing.SignatureExpired:
        raise ApprovalLinkInvalid("This link has expired.", "expired") from None
    except signing.BadSignature:
        raise ApprovalLinkInvalid("This link is not valid.", "forged") from None
    status = payload.get("d") if isinstance(payload, dict) else None
    link = (ApprovalLink.objects.select_related("request", "request__execution",
                                                "request__action_execution")
            .filter(nonce=payload.get("n") if isinstance(payload, dict) else None).first())
    if link is None or status not in DecisionStatus.values:
        raise ApprovalLinkInvalid("This link is not valid.", "forged")
    if link.user_id != getattr(user, "pk", None):
        raise ApprovalLinkInvalid(
            "This link was sent to another reviewer: sign in as that reviewer, or decide "
            "from your approvals inbox.", "not_yours")
    if link.used_at is not None:
        raise ApprovalLinkInvalid(
            f"This link was already used at {link.used_at:%Y-%m-%d %H:%M} UTC.", "used")
    if timezone.now() >= link.expires_at:
        raise ApprovalLinkInvalid("This link has expired.", "expired")
    return LinkTarget(link, status)


def approval_decide_by_link(*, signed: str, user, summary: str = "") -> ApprovalDecision:
    """Decide through a signed link (the confirmation page's POST; never a GET).

    The link is resolved as ``approval_link_resolve``, consumed (compare-and-set
    on ``used_at``: the first POST wins, a second is ApprovalLinkInvalid "used")
    and the decision made as ``approval_decide`` with surface "link", in one
    transaction: a refused decision leaves the link unused.
    """
    target = approval_link_resolve(signed=signed, user=user)
    with transaction.atomic():
        if not ApprovalLink.objects.filter(pk=target.link.pk, used_at__isnull=True).update(
                used_at=timezone.now()):
            raise ApprovalLinkInvalid("This link was already used.", "used")
        return approval_decide(request=target.request, user=user, status=target.status,
                               summary=summary, surface=DecisionSurface.LINK)


# --- what reviewers see -------------------------------------------------------------------


def approval_list(*, user, status: str | None = None) -> list[ApprovalRequest]:
    """The requests ``user`` is a reviewer of, newest first; ``status`` filters.

    A Pending request past its expiry, or whose action has already ended (the
    moment before the engine's signal closes it), is not listed as Pending.
    """
    if user is None or not user.is_authenticated or visible_group_ids(user, Act.REVIEW) == set():
        return []
    qs: QuerySet[ApprovalRequest] = ApprovalRequest.objects.select_related(
        "execution", "execution__triggered_by", "action_execution").prefetch_related(
        "decisions").order_by("-created_at")
    qs = qs.filter(pipelines_q(user, Act.REVIEW, "execution__pipeline__"))
    if status:
        qs = qs.filter(status=status)
    if status == ApprovalStatus.PENDING:
        qs = qs.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()),
                       action_execution__status=ActionExecutionStatus.IN_PROGRESS)
    # SQL narrows by the reviewer keys (LIKE may ignore case); the exact rule follows.
    groups = list(user.groups.values_list("name", flat=True))
    narrow = Q(reviewer_keys="") | Q(reviewer_keys__contains=f",{user.get_username()},")
    for group in groups:
        narrow |= Q(reviewer_keys__contains=f",group:{group},")
    return [r for r in qs.filter(narrow) if _is_listed(r, user.get_username(), groups)]


def _is_listed(request: ApprovalRequest, username: str, groups: list[str]) -> bool:
    reviewers = parse_reviewers(request.reviewers)
    return reviewers.anyone or username in reviewers.users or bool(
        reviewers.groups.intersection(groups))


def approval_get(*, approval_id, user) -> ApprovalRequest:
    """One request by id for a reviewer; ApprovalNotFound (also when its pipeline is not
    visible to ``user``), or ApprovalForbidden (not a reviewer; holding no role at all)."""
    if not holds_any_role(user):
        raise ApprovalForbidden("You hold no role on any pipeline group.")
    try:
        request = ApprovalRequest.objects.select_related(
            "execution__pipeline__group", "action_execution").get(pk=approval_id)
    except (ApprovalRequest.DoesNotExist, ValueError, DjangoValidationError):
        raise ApprovalNotFound("No approval has this id.") from None
    if not pipeline_allows(user, request.execution.pipeline, Act.VIEW):
        raise ApprovalNotFound("No approval has this id.")
    refusal = approval_refusal(request=request, user=user)
    if refusal:
        raise ApprovalForbidden(refusal)
    return request


@dataclass(frozen=True)
class Commit:
    """One commit of a local Git source between the deployed revision and this one."""

    sha: str
    author: str
    subject: str


@dataclass
class Changes:
    """What an approval would ship compared with the last successful production deploy.

    ``deployed`` is the execution that last succeeded in the pipeline's last
    stage (None: nothing deployed yet); ``revisions`` the source revisions the
    executions after it up to this one carried, newest first, each revision once;
    ``commits`` (None when unknown) the ``git log`` between the deployed commit
    and this one, for Git sources whose repository is a local path.
    """

    stage_name: str
    deployed: PipelineExecution | None
    deployed_revisions: list[SourceRevision]
    revisions: list[SourceRevision]
    commits: list[Commit] | None = None


def approval_changes(*, request: ApprovalRequest, limit: int = 50) -> Changes:
    """The changes since the last production deploy (``Changes``), read from SourceRevisions."""
    ex = request.execution
    stages = ex.pipeline_version.document.get("stages", [])
    last_stage = stages[-1]["name"] if stages else ""
    deployed_se = (StageExecution.objects.filter(
        pipeline_id=ex.pipeline_id, stage_name=last_stage, status=StageExecutionStatus.SUCCEEDED)
        .exclude(execution=ex).select_related("execution").order_by("-ended_at", "-id").first())
    deployed = deployed_se.execution if deployed_se else None
    deployed_revisions = _revisions(deployed) if deployed else []
    base = {(r.action_name, r.revision_id) for r in deployed_revisions}
    qs = SourceRevision.objects.filter(execution__pipeline_id=ex.pipeline_id,
                                       execution__number__lte=ex.number)
    if deployed is not None:
        qs = qs.filter(execution__number__gt=deployed.number)
    seen, revisions = set(base), []
    for revision in qs.select_related("execution").order_by("-execution__number", "id"):
        key = (revision.action_name, revision.revision_id)
        if key in seen:
            continue
        seen.add(key)
        revisions.append(revision)
        if len(revisions) >= limit:
            break
    changes = Changes(last_stage, deployed, deployed_revisions, revisions)
    changes.commits = _local_git_log(ex, deployed_revisions, limit=limit)
    return changes


def _local_git_log(ex: PipelineExecution, deployed_revisions: list[SourceRevision], *,
                   limit: int) -> list[Commit] | None:
    """``git log deployed..this`` of the Git sources whose repository is a local path.

    None when there is no deployed commit to compare with, no local Git
    source, or git cannot answer (a repository moved, a history rewritten):
    the page then lists the revision ids instead.
    """
    from runners.git import GitError, git

    base = {r.action_name: r.revision_id for r in deployed_revisions}
    heads = {r.action_name: r.revision_id for r in _revisions(ex)}
    sources = ActionExecution.objects.filter(
        execution=ex.rollback_target if ex.rollback_target_id else ex, category="Source",
        provider="Git", status=ActionExecutionStatus.SUCCEEDED)
    commits: list[Commit] = []
    found = False
    for source in sources.order_by("id"):
        url = str(((source.configuration or {}).get("configuration") or {}).get(
            "RepositoryUrl", ""))
        path = Path(url.removeprefix("file://"))
        old, new = base.get(source.action_name), heads.get(source.action_name)
        if not (path.is_absolute() and path.is_dir() and old and new):
            continue
        try:
            out = git(["log", f"--max-count={limit}", "--format=%H%x00%an%x00%s",
                       f"{old}..{new}", "--"], cwd=path, timeout=10)
        except (GitError, OSError):
            continue
        found = True
        for line in out.splitlines():
            sha, author, subject = (line.split("\x00") + ["", ""])[:3]
            commits.append(Commit(sha, author, subject))
    return commits if found else None
