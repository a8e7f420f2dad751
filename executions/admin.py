"""The admin for executions: for looking, and for the few commands a person needs there.

Executions are read-only here (they change only through the engine): the
list shows pipeline, number, status, trigger, start and duration; an
execution's page shows its stage and action executions (every attempt) and
its events. The admin actions call ``executions.services`` like every other
surface: stop (running actions finish), stop and abandon, and retry the
failed actions of the failed stage. Transitions are toggled on the
pipeline's admin page.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from executions import services
from executions.choices import RetryMode, StageExecutionStatus
from executions.errors import ExecutionError
from executions.models import ActionExecution, ExecutionEvent, PipelineExecution, StageExecution
from teams.access import pipeline_allows
from teams.admin_scope import PipelineScopedAdmin
from teams.choices import Act


def duration_text(started, ended) -> str:
    """"1 h 2 min", "3 min 4 s", "5.2 s"; a running one counts up to now; "—" if not started."""
    if started is None:
        return "—"
    seconds = ((ended or timezone.now()) - started) / timedelta(seconds=1)
    if seconds < 60:
        text = f"{seconds:.1f} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min {int(seconds % 60)} s"
    else:
        text = f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return text if ended else f"{text} so far"


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class StageExecutionInline(_ReadOnlyInline):
    model = StageExecution
    verbose_name_plural = "Stage executions (every attempt)"
    fields = ["stage_name", "attempt", "retry_mode", "status", "status_summary", "started_at",
              "duration"]
    readonly_fields = fields
    ordering = ["stage_index", "attempt"]

    @admin.display(description="Duration")
    def duration(self, se: StageExecution) -> str:
        return duration_text(se.started_at, se.ended_at)


class ActionExecutionInline(_ReadOnlyInline):
    model = ActionExecution
    fk_name = "execution"
    verbose_name_plural = "Action executions (every attempt)"
    fields = ["stage_name", "action_name", "attempt", "provider", "status", "summary",
              "started_at", "duration", "links"]
    readonly_fields = fields
    ordering = ["stage_execution__stage_index", "run_order", "action_name", "attempt"]

    @admin.display(description="Duration")
    def duration(self, ae: ActionExecution) -> str:
        return duration_text(ae.started_at, ae.ended_at)

    @admin.display(description="Links")
    def links(self, ae: ActionExecution) -> str:
        parts = [format_html('<a href="{}">log</a>', reverse(
            "api-action-execution-log", args=[str(ae.action_execution_id)]))]
        if ae.external_url:
            parts.append(format_html('<a href="{}" rel="noopener">external</a>',
                                     ae.external_url))
        return format_html_join(" · ", "{}", ((p,) for p in parts))


class ExecutionEventInline(_ReadOnlyInline):
    model = ExecutionEvent
    verbose_name_plural = "Events"
    fields = ["id", "created_at", "kind", "stage_name", "action_name", "previous_status",
              "status", "summary"]
    readonly_fields = fields
    ordering = ["id"]


@admin.register(PipelineExecution)
class PipelineExecutionAdmin(PipelineScopedAdmin, admin.ModelAdmin):
    change_act = Act.OPERATE
    list_display = ["pipeline", "number", "status", "trigger", "started_at", "duration"]
    list_display_links = ["pipeline", "number"]
    list_filter = ["status", "execution_type", "trigger_type", "pipeline"]
    list_select_related = ["pipeline", "triggered_by"]
    search_fields = ["pipeline__name"]
    search_help_text = "An execution id, a pipeline name, or #number."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    actions = ["stop_and_wait", "stop_and_abandon", "retry_failed_actions"]
    inlines = [StageExecutionInline, ActionExecutionInline, ExecutionEventInline]
    fieldsets = [
        (None, {"fields": [("execution_id", "pipeline", "number"),
                           ("pipeline_version_number", "execution_mode", "execution_type"),
                           ("status", "status_summary"),
                           ("trigger", "client_request_token"),
                           ("started_at", "ended_at", "duration"),
                           ("inbound", "superseded_by", "rollback")]}),
        ("Variables and revisions", {"fields": ["variables", "source_revision_overrides",
                                                "revisions", "artifact_links"]}),
    ]
    readonly_fields = ["execution_id", "pipeline", "number", "pipeline_version_number",
                       "execution_mode", "execution_type", "status", "status_summary",
                       "trigger", "client_request_token", "started_at", "ended_at",
                       "duration", "inbound", "superseded_by", "rollback", "variables",
                       "source_revision_overrides", "revisions", "artifact_links"]

    # --- read-only ---------------------------------------------------------------

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_stop_permission(self, request) -> bool:
        return request.user.has_perm("executions.stop_pipelineexecution")

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("executions.retry_pipelineexecution")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(
            "pipeline", "pipeline_version", "triggered_by", "superseded_by", "rollback_target")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        try:
            return queryset.filter(execution_id=uuid.UUID(term)), False
        except ValueError:
            pass
        if term.lstrip("#").isdigit():
            return queryset.filter(number=int(term.lstrip("#"))), False
        return super().get_search_results(request, queryset, search_term)

    # --- columns and fields ------------------------------------------------------------

    @admin.display(description="Trigger", ordering="trigger_type")
    def trigger(self, ex: PipelineExecution) -> str:
        who = ex.trigger_detail or (ex.triggered_by.get_username() if ex.triggered_by else "")
        return f"{ex.get_trigger_type_display()}" + (f" ({who})" if who else "")

    @admin.display(description="Duration")
    def duration(self, ex: PipelineExecution) -> str:
        return duration_text(ex.started_at, ex.ended_at)

    @admin.display(description="Pipeline version")
    def pipeline_version_number(self, ex: PipelineExecution) -> int:
        return ex.pipeline_version.number

    @admin.display(description="Waiting at")
    def inbound(self, ex: PipelineExecution) -> str:
        if not ex.inbound_stage_name:
            return "—"
        return f"{ex.inbound_stage_name}: {ex.get_inbound_reason_display()}"

    @admin.display(description="Rollback of")
    def rollback(self, ex: PipelineExecution) -> str:
        if ex.rollback_target is None:
            return "—"
        return f"{ex.rollback_stage_name} to {ex.rollback_target}"

    @admin.display(description="Source revisions")
    def revisions(self, ex: PipelineExecution) -> str:
        rows = ex.source_revisions.all()
        if not rows:
            return "—"
        return format_html_join(
            ", ", "{}: {}", ((r.action_name, r.revision_id) for r in rows))

    @admin.display(description="Artifacts")
    def artifact_links(self, ex: PipelineExecution) -> str:
        names = sorted(set(ex.artifacts.values_list("name", flat=True)))
        if not names:
            return "—"
        return format_html_join(", ", '<a href="{}">{}</a>', (
            (reverse("api-artifact-download", args=[str(ex.execution_id), name]), name)
            for name in names))

    # --- actions: they call the services ------------------------------------------------

    def _each(self, request, queryset, verb: str, call) -> None:
        done = 0
        for ex in queryset:
            if not pipeline_allows(request.user, ex.pipeline, Act.OPERATE):
                self.message_user(request, f"{ex}: you may not operate pipeline "
                                  f'"{ex.pipeline.name}".', messages.ERROR)
                continue
            try:
                call(ex)
            except ExecutionError as exc:
                self.message_user(request, f"{ex}: {exc.detail}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb} {done} execution{'s' if done != 1 else ''}.",
                              messages.SUCCESS)

    @admin.action(description="Stop (running actions finish)", permissions=["stop"])
    def stop_and_wait(self, request, queryset):
        self._each(request, queryset, "Stopping", lambda ex: services.execution_stop(
            execution=ex, abandon=False, user=request.user,
            reason=f"Stopped by {request.user.get_username()} in the admin"))

    @admin.action(description="Stop and abandon running actions", permissions=["stop"])
    def stop_and_abandon(self, request, queryset):
        self._each(request, queryset, "Stopped", lambda ex: services.execution_stop(
            execution=ex, abandon=True, user=request.user,
            reason=f"Stopped and abandoned by {request.user.get_username()} in the admin"))

    @admin.action(description="Retry the failed actions of the failed stage",
                  permissions=["retry"])
    def retry_failed_actions(self, request, queryset):
        def retry(ex: PipelineExecution) -> None:
            latest = ex.stage_executions.order_by("-id").first()
            if latest is None or latest.status not in (StageExecutionStatus.FAILED,
                                                       StageExecutionStatus.STOPPED):
                raise ExecutionError(f"Execution #{ex.number} has no failed or stopped stage "
                                     "to retry.")
            services.stage_retry(execution=ex, stage_name=latest.stage_name,
                                 mode=RetryMode.FAILED_ACTIONS, user=request.user)

        self._each(request, queryset, "Retrying", retry)
