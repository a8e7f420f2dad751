"""Admin: approval requests and their decisions, read-only (they are an audit trail).

Deciding happens in the inbox, the API, a signed link or the AWS endpoint,
all through ``approvals.services``; the admin only looks.
"""

from django.contrib import admin

from approvals.models import ApprovalDecision, ApprovalRequest
from teams.admin_scope import PipelineScopedAdmin


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DecisionInline(admin.TabularInline):
    model = ApprovalDecision
    extra = 0
    can_delete = False
    fields = ["username", "status", "summary", "surface", "decided_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(PipelineScopedAdmin, ReadOnlyAdmin):
    pipeline_path = "execution__pipeline"
    list_display = ["pipeline_name", "stage_name", "action_name", "execution_number", "status",
                    "required_approvals", "reviewers", "created_at", "expires_at", "closed_at"]
    list_filter = ["status", "pipeline_name"]
    search_fields = ["pipeline_name", "stage_name", "action_name", "revision", "custom_data"]
    date_hierarchy = "created_at"
    inlines = [DecisionInline]
    fields = ["id", "pipeline_name", "stage_name", "action_name", "execution", "custom_data",
              "external_entity_link", "revision", "revision_summary", "required_approvals",
              "reviewers", "allow_self_approval", "notification_webhook", "status",
              "status_summary", "superseded_by", "created_at", "expires_at", "closed_at",
              "notified_at"]
    readonly_fields = fields

    @admin.display(description="Execution", ordering="execution__number")
    def execution_number(self, obj):
        return f"#{obj.execution.number}"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("execution", "superseded_by")


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(PipelineScopedAdmin, ReadOnlyAdmin):
    pipeline_path = "request__execution__pipeline"
    list_display = ["request", "username", "status", "surface", "decided_at"]
    list_filter = ["status", "surface"]
    search_fields = ["username", "summary", "request__pipeline_name"]
    fields = ["request", "username", "status", "summary", "surface", "decided_at"]
    readonly_fields = fields
