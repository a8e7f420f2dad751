"""Agent keys in the admin: made here (the key is shown once), revoked here; agents are
read-only (they report themselves)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from agents import services
from agents.models import Agent, AgentKey


@admin.register(AgentKey)
class AgentKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    fields = ("name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            AgentKey.objects.filter(pk=obj.pk).update(name=obj.name)
            return
        row, key = services.agent_key_create(name=obj.name, user=request.user)
        obj.pk, obj.prefix, obj.digest, obj.created_at = row.pk, row.prefix, row.digest, \
            row.created_at
        obj._state.adding = False
        messages.warning(request, format_html(
            "The key of {} is <code data-test='agent-key'>{}</code> — copy it now into the "
            "agent's key file: it is not stored and will not be shown again.", row.name, key))

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row keeps who used the key and when

    @admin.action(description="Revoke the selected keys (their agents are refused at once)")
    def revoke(self, request, queryset):
        count = sum(services.agent_key_revoke(key=key) for key in queryset)
        self.message_user(request, f"{count} key(s) revoked.")


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "labels", "version", "hostname", "last_seen_at", "action_execution")
    readonly_fields = ("name", "key", "labels", "version", "hostname", "first_seen_at",
                       "last_seen_at", "action_execution")

    def has_add_permission(self, request):
        return False
