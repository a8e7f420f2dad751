"""The admin for condition records: for looking only (they change through the engine and
``conditions.services``; an override is a command of the REST API, the AWS endpoint and
the dashboard)."""

from django.contrib import admin

from conditions.models import ConditionExecution, RuleExecution


class RuleExecutionInline(admin.TabularInline):
    model = RuleExecution
    fields = ["position", "rule_name", "provider", "status", "summary", "started_at",
              "ended_at", "recheck_at", "deadline_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConditionExecution)
class ConditionExecutionAdmin(admin.ModelAdmin):
    list_display = ["stage_execution", "kind", "result", "status", "started_at", "ended_at",
                    "overridden_by"]
    list_filter = ["kind", "status", "result"]
    list_select_related = ["stage_execution__execution__pipeline", "overridden_by"]
    inlines = [RuleExecutionInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
