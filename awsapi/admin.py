"""Access keys in the admin: create one for a user (its secret shown once), list, deactivate."""

from django.contrib import admin, messages

from awsapi.models import AccessKey
from awsapi.services import access_key_create, access_key_deactivate


@admin.register(AccessKey)
class AccessKeyAdmin(admin.ModelAdmin):
    list_display = ["access_key_id", "user", "is_active", "created_at", "last_used_at"]
    list_filter = ["is_active"]
    search_fields = ["access_key_id", "user__username"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    actions = ["deactivate"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user"]
        return ["access_key_id", "user", "is_active", "created_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        # A key is never edited: it is made, used and deactivated (the action).
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, secret = access_key_create(user=obj.user, by=request.user)
        for field in ("pk", "access_key_id", "secret_encrypted", "is_active", "created_at"):
            setattr(obj, field, getattr(key, field))
        messages.warning(
            request,
            f"Secret access key for {key.access_key_id}: {secret} — copy it now, it is "
            "stored encrypted and will not be shown again.",
        )

    @admin.action(description="Deactivate selected access keys", permissions=["change"])
    def deactivate(self, request, queryset):
        count = sum(access_key_deactivate(access_key=key, by=request.user) for key in queryset)
        self.message_user(request, f"{count} access key{'s' if count != 1 else ''} "
                          "deactivated.", messages.SUCCESS)
