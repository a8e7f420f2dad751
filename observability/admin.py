"""The audit trail in the admin: filterable, searchable, and read-only."""

from django.contrib import admin

from observability.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """No add, change or delete, not even for superusers: entries are append-only."""

    list_display = ("at", "actor", "action", "surface", "pipeline", "execution_number",
                    "stage", "reason")
    list_filter = ("action", "surface", "at", "pipeline")
    search_fields = ("actor", "pipeline", "reason", "=execution_id")
    date_hierarchy = "at"
    actions = None
    list_per_page = 100

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
