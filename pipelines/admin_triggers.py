"""The admin of what starts and reports pipelines from outside: CodePipeline webhooks
(PutWebhook), schedules and commit-status targets (imported by ``pipelines.admin``)."""

from django import forms
from django.contrib import admin
from django.utils import timezone as django_timezone

from pipelines import services
from pipelines.models import CommitStatusTarget, PipelineSchedule, Webhook
from teams.admin_scope import PipelineScopedAdmin


@admin.register(Webhook)
class WebhookAdmin(PipelineScopedAdmin, admin.ModelAdmin):
    """CodePipeline webhooks (PutWebhook): made and changed through the AWS API."""

    list_display = ["name", "pipeline", "target_action", "authentication", "last_triggered_at"]
    list_select_related = ["pipeline"]
    search_fields = ["name", "pipeline__name"]
    fields = ["name", "pipeline", "target_action", "filters", "authentication",
              "allowed_ip_range", "tags", "last_triggered_at", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PipelineScheduleForm(forms.ModelForm):
    class Meta:
        model = PipelineSchedule
        fields = ["pipeline", "name", "cron", "timezone", "enabled"]

    def clean(self):
        from pipelines import schedules

        data = super().clean()
        for field, check in (("cron", schedules.cron_problem),
                             ("timezone", schedules.timezone_problem)):
            if data.get(field):
                why = check(data[field])
                if why:
                    self.add_error(field, f"{field} {why}")
        return data


@admin.register(PipelineSchedule)
class PipelineScheduleAdmin(PipelineScopedAdmin, admin.ModelAdmin):
    """Cron-style triggers; the ticks acted on are listed read-only under each."""

    form = PipelineScheduleForm
    list_display = ["pipeline", "name", "cron", "timezone", "enabled", "next_run"]
    list_select_related = ["pipeline"]

    @admin.display(description="Next run")
    def next_run(self, schedule: PipelineSchedule) -> str:
        from pipelines import schedules

        if not schedule.enabled:
            return "—"
        return schedules.next_tick(schedule.cron, schedule.timezone,
                                   django_timezone.now()).strftime("%Y-%m-%d %H:%M %Z")

    def save_model(self, request, obj, form, change):
        services.schedule_save(schedule=obj)


class CommitStatusTargetForm(forms.ModelForm):
    """The token is write-only: never filled in from the row; left empty, the stored one
    is kept (the model seals what is given)."""

    api_url = forms.URLField(assume_scheme="https", max_length=500,
                             help_text="GitHub: https://api.github.com; GitLab: "
                                       "https://<host>/api/v4; Gitea: https://<host>/api/v1")
    token = forms.CharField(required=False, max_length=250,
                            widget=forms.PasswordInput(render_value=False),
                            help_text="Never shown back; left empty, the stored token is kept.")

    class Meta:
        model = CommitStatusTarget
        fields = ["pipeline", "provider", "api_url", "repository", "token", "per_stage",
                  "enabled"]

    def clean_token(self):
        value = self.cleaned_data.get("token") or ""
        if value:
            return value
        if self.instance.pk and self.instance.token:
            return self.instance.token  # kept as stored (sealed)
        raise forms.ValidationError("A token is required: the forge refuses statuses without one.")


@admin.register(CommitStatusTarget)
class CommitStatusTargetAdmin(admin.ModelAdmin):
    """Where each pipeline reports commit statuses (see triggers.statuses)."""

    form = CommitStatusTargetForm
    list_display = ["pipeline", "provider", "repository", "per_stage", "enabled"]
    list_select_related = ["pipeline"]
