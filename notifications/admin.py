"""Rules are configuration (edited here); deliveries are for looking (read-only)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from notifications import services
from notifications.choices import NotificationEvent
from notifications.models import NotificationDelivery, NotificationRule
from teams.admin_scope import PipelineScopedAdmin


class NotificationRuleForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=NotificationEvent.choices,
                                       widget=forms.CheckboxSelectMultiple)
    target_url = forms.URLField(assume_scheme="https", required=False, max_length=2000)

    class Meta:
        model = NotificationRule
        fields = ["name", "pipeline", "events", "target_kind", "target_url", "secret",
                  "email_to", "enabled"]
        widgets = {"secret": forms.PasswordInput(render_value=True)}

    def clean(self):
        data = super().clean()
        problems = services.rule_problems(
            events=list(data.get("events") or []), target_kind=data.get("target_kind") or "",
            target_url=data.get("target_url") or "", email_to=data.get("email_to") or "")
        fields = {"targetUrl": "target_url", "emailTo": "email_to", "targetKind": "target_kind"}
        for p in problems:
            self.add_error(fields.get(p.path, "events" if p.path.startswith("events")
                                      else None), p.message)
        return data


class DeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    fields = ["created_at", "event_key", "status", "attempts", "next_attempt_at",
              "last_answer", "delivered_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-id"]

    def get_queryset(self, request):
        # The last deliveries only: a busy rule has thousands.
        qs = super().get_queryset(request)
        ids = list(qs.order_by("-id").values_list("id", flat=True)[:20])
        return qs.filter(id__in=ids)


@admin.register(NotificationRule)
class NotificationRuleAdmin(PipelineScopedAdmin, admin.ModelAdmin):
    form = NotificationRuleForm
    list_display = ["name", "pipeline", "target_kind", "enabled", "event_list"]
    list_filter = ["target_kind", "enabled"]
    inlines = [DeliveryInline]

    @admin.display(description="Events")
    def event_list(self, rule: NotificationRule) -> str:
        return ", ".join(rule.event_labels)

    def save_model(self, request, obj, form, change):
        try:
            services.rule_save(rule=obj)
        except services.RuleInvalid as exc:  # the form's clean() asked the same rules
            raise ValidationError(str(exc)) from None


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(PipelineScopedAdmin, admin.ModelAdmin):
    pipeline_path = "rule__pipeline"
    list_display = ["created_at", "rule", "event_key", "status", "attempts", "last_answer"]
    list_filter = ["status", "event_key"]
    list_select_related = ["rule"]
    readonly_fields = ["rule", "event", "event_key", "status", "attempts", "next_attempt_at",
                       "last_answer", "created_at", "delivered_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
