"""Pipeline groups in the admin: administrators make and delete them, owners change theirs.

Each change of a group's roles is recorded in the audit trail (``group.roles``), as
through the REST API (``teams.services``).
"""

from django.contrib import admin

from teams import access, services
from teams.choices import Act
from teams.models import PipelineGroup, RoleGrant


class RoleGrantInline(admin.TabularInline):
    model = RoleGrant
    extra = 1
    fields = ["role", "user", "group"]
    autocomplete_fields = ["user", "group"]


@admin.register(PipelineGroup)
class PipelineGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "pipeline_count"]
    search_fields = ["name", "description"]
    inlines = [RoleGrantInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = access.visible_group_ids(request.user)
        return queryset if ids is None else queryset.filter(pk__in=ids)

    def get_readonly_fields(self, request, obj=None):
        return ["name"] if obj is not None else []

    @admin.display(description="Pipelines")
    def pipeline_count(self, group: PipelineGroup) -> int:
        return group.pipelines.count()

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff and access.holds_any_role(
            request.user)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or access.group_allows(request.user, obj.pk, Act.VIEW))

    def has_add_permission(self, request):
        return request.user.is_staff and access.is_administrator(request.user)

    def has_change_permission(self, request, obj=None):
        if not request.user.is_staff:
            return False
        if obj is None:
            return access.is_administrator(request.user) or bool(
                access.visible_group_ids(request.user, Act.OWN))
        return access.group_allows(request.user, obj.pk, Act.OWN)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_staff and access.is_administrator(request.user)

    def save_related(self, request, form, formsets, change):
        group = form.instance
        before = services.group_grants(group) if change else []
        super().save_related(request, form, formsets, change)
        services.pipeline_group_audit(group=group, before=before, user=request.user,
                                      change="update" if change else "create")

    def delete_model(self, request, obj):
        services.pipeline_group_delete(group=obj, user=request.user)
