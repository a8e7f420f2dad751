"""Custom action types in the admin (through ``jobs.action_types``); jobs, read-only."""

from django import forms
from django.contrib import admin, messages

from jobs import action_types, errors
from jobs.models import CustomActionType, Job


class CustomActionTypeForm(forms.ModelForm):
    class Meta:
        model = CustomActionType
        fields = ["category", "owner", "provider", "version", "description",
                  "entity_url_template", "execution_url_template", "revision_url_template",
                  "third_party_configuration_url", "configuration_properties",
                  "input_minimum", "input_maximum", "output_minimum", "output_maximum"]

    def data_for_service(self) -> dict:
        c = self.cleaned_data
        settings = {key: c.get(field) for key, field in (
            ("entityUrlTemplate", "entity_url_template"),
            ("executionUrlTemplate", "execution_url_template"),
            ("revisionUrlTemplate", "revision_url_template"),
            ("thirdPartyConfigurationUrl", "third_party_configuration_url")) if c.get(field)}
        return {"category": c.get("category"), "provider": c.get("provider"),
                "version": c.get("version"), "settings": settings,
                "configurationProperties": c.get("configuration_properties") or [],
                "inputArtifactDetails": {"minimumCount": c.get("input_minimum"),
                                         "maximumCount": c.get("input_maximum")},
                "outputArtifactDetails": {"minimumCount": c.get("output_minimum"),
                                          "maximumCount": c.get("output_maximum")}}

    def clean(self):
        cleaned = super().clean()
        from jobs.validation import type_problems

        problems = (type_problems(self.data_for_service()) if self.instance.pk else
                    action_types.action_type_refusal(data=self.data_for_service(),
                                                     owner=cleaned.get("owner") or "Custom"))
        for path, message in problems:
            self.add_error(None, f"{path}: {message}")
        return cleaned


@admin.register(CustomActionType)
class CustomActionTypeAdmin(admin.ModelAdmin):
    form = CustomActionTypeForm
    list_display = ["__str__", "description", "created_at", "deleted_at"]
    list_filter = ["category", "owner"]
    search_fields = ["provider"]
    actions = ["delete_types"]

    def get_readonly_fields(self, request, obj=None):
        # The id of a registered type never changes (AWS): change its definition only.
        return ["category", "owner", "provider", "version", "client_id", "deleted_at"] \
            if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False   # deleted as AWS does (kept, marked): the action below

    def save_model(self, request, obj, form, change):
        data = form.data_for_service()
        try:
            if change:
                action_types.action_type_update(action_type=obj, data=data)
                CustomActionType.objects.filter(pk=obj.pk).update(
                    description=obj.description)
                return
            created, token = action_types.action_type_create(
                data=data, owner=obj.owner, user=request.user)
        except errors.JobInvalid as exc:
            messages.error(request, exc.detail)
            return
        obj.pk = created.pk
        CustomActionType.objects.filter(pk=obj.pk).update(description=obj.description)
        if token:
            messages.warning(request, f"Client id {created.client_id}, client token {token} "
                             "— copy the token now, it is stored hashed and will not be "
                             "shown again.")

    @admin.action(description="Delete selected action types (their versions cannot be "
                  "used again)", permissions=["change"])
    def delete_types(self, request, queryset):
        count = sum(action_types.action_type_delete(action_type=t) for t in queryset)
        self.message_user(request, f"{count} action type(s) deleted.", messages.SUCCESS)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["job_id", "status", "category", "provider", "attempt", "worker",
                    "created_at", "acknowledged_at", "ended_at"]
    list_filter = ["status", "owner"]
    search_fields = ["job_id", "provider"]
    exclude = ["credential_secret", "session_token"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Job._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
