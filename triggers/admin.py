from django.contrib import admin

from teams.admin_scope import PipelineScopedAdmin
from triggers.models import CommitStatusReport


@admin.register(CommitStatusReport)
class CommitStatusReportAdmin(PipelineScopedAdmin, admin.ModelAdmin):
    """What each forge was told, and its last answer (read-only)."""

    pipeline_path = "execution__pipeline"

    list_display = ["updated_at", "context", "commit", "wanted_state", "reported_state",
                    "attempts", "last_answer"]
    list_filter = ["reported_state"]
    readonly_fields = ["execution", "context", "commit", "wanted_state", "reported_state",
                       "description", "attempts", "last_answer", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
