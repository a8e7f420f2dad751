"""The pipeline admin's forms and inlines: pretty JSON fields, and the mapping of a
validation problem's JSON path to the form field it is about (see ``pipelines.admin``)."""

import json

from django import forms
from django.contrib import admin
from django.db import models
from nested_admin import NestedStackedInline, SortableHiddenMixin

from pipelines import providers, services
from pipelines.choices import ActionOwner
from pipelines.models import Action, Pipeline, Stage

# Top-level document keys edited in their own form fields; everything else
# (roleArn, artifactStore, pipelineType, ...) is edited as "Other fields".
_OWN_KEYS = ("name", "executionMode", "stages", "version", "variables", "triggers")


# --- JSON edited as pretty JSON ---------------------------------------------------


class JSONTextarea(forms.Textarea):
    """A textarea as tall as the JSON it holds (2 to 20 lines)."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        lines = str(value or "").count("\n") + 1
        context["widget"]["attrs"]["rows"] = min(max(lines, 2), 20)
        return context


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows indented JSON; empty means ``empty`` ({} or [])."""

    def __init__(self, *args, empty=None, **kwargs):
        self.empty = empty
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", JSONTextarea(attrs={"cols": 70,
                                                        "class": "vLargeTextField json"}))
        kwargs.pop("max_length", None)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value):
        value = super().to_python(value)
        if value is None and self.empty is not None:
            return type(self.empty)()
        return value

    def has_changed(self, initial, data):
        try:
            data = self.to_python(data)
        except forms.ValidationError:
            return True
        return json.dumps(initial, sort_keys=True) != json.dumps(data, sort_keys=True)


def _json_field(db_field, empty, **kwargs):
    return PrettyJSONField(label=kwargs.get("label") or db_field.verbose_name.capitalize(),
                           empty=empty, help_text=kwargs.get("help_text", db_field.help_text))


# --- mapping a problem's JSON path to a form field -----------------------------------

_ACTION_FIELDS = {
    "name": "name", "runOrder": "run_order", "configuration": "configuration",
    "inputArtifacts": "input_artifacts", "outputArtifacts": "output_artifacts",
    "namespace": "namespace", "timeoutInMinutes": "timeout_in_minutes",
    "commands": "commands", "environmentVariables": "environment_variables",
}
_TYPE_FIELDS = {"category": "category", "owner": "owner", "provider": "provider",
                "version": "provider_version"}
_TOP_FIELDS = {"name": "name", "executionMode": "execution_mode", "variables": "variables",
               "triggers": "triggers"}


def _split(path: str) -> list[str]:
    """``stages[1].actions[0].name`` -> ``["stages", "1", "actions", "0", "name"]``."""
    return [part for part in path.replace("[", ".").replace("]", "").split(".") if part]


def _field_for(parts: list[str], table: dict, fallback: str | None) -> str | None:
    if not parts:
        return None
    if parts[0] == "actionTypeId":
        return _TYPE_FIELDS.get(parts[1]) if len(parts) > 1 else "category"
    return table.get(parts[0], fallback)


class _ProblemsOnForm:
    """Adds the problems found on a rolled-back save to the form they belong to."""

    problems_by_prefix: dict = {}

    def clean(self):
        cleaned = super().clean()
        for field, message in self.problems_by_prefix.get(self.prefix or "", []):
            self.add_error(field if field in self.fields else None, message)
        return cleaned


# --- forms ---------------------------------------------------------------------------


class PipelineAdminForm(_ProblemsOnForm, forms.ModelForm):
    variables = PrettyJSONField(empty=[], help_text='e.g. [{"name": "Env", "defaultValue": '
                                '"staging"}] — referenced as #{variables.Env}.')
    triggers = PrettyJSONField(empty=[], help_text="CodePipeline triggers (gitConfiguration "
                               "with push / pullRequest filters).")
    other_fields = PrettyJSONField(
        empty={}, label="Other fields",
        help_text="Fields Conveyor keeps but does not use (roleArn, artifactStore, "
        "pipelineType, ...), as a JSON object.",
    )

    new_webhook_secret = forms.CharField(
        required=False, label="Webhook secret", strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="A new HMAC-SHA256 secret for push webhooks (at least 16 characters); "
        "leave blank to keep the current one. Never shown again.",
    )
    remove_webhook_secret = forms.BooleanField(
        required=False, label="Turn push webhooks off (remove the secret)")

    class Meta:
        model = Pipeline
        fields = ["name", "execution_mode"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        doc = self.instance.document or {}
        self.fields["variables"].initial = doc.get("variables", [])
        self.fields["triggers"].initial = doc.get("triggers", [])
        self.fields["other_fields"].initial = {k: v for k, v in doc.items()
                                               if k not in _OWN_KEYS}

    def clean_new_webhook_secret(self):
        secret = self.cleaned_data["new_webhook_secret"]
        if secret and len(secret) < services.MIN_WEBHOOK_SECRET:
            raise forms.ValidationError(
                f"Use at least {services.MIN_WEBHOOK_SECRET} characters.")
        return secret

    def clean_other_fields(self):
        value = self.cleaned_data["other_fields"]
        if not isinstance(value, dict):
            raise forms.ValidationError("Enter a JSON object.")
        own = sorted(set(value) & set(_OWN_KEYS))
        if own:
            raise forms.ValidationError(
                "Edit " + ", ".join(own) + " in " + ("its" if len(own) == 1 else "their")
                + " own field" + ("" if len(own) == 1 else "s") + ", not here.")
        return value

    def document_fields(self) -> dict:
        """The top-level document fields this form edits, besides name, mode and stages."""
        return {**self.cleaned_data["other_fields"],
                "variables": self.cleaned_data["variables"],
                "triggers": self.cleaned_data["triggers"]}


class StageForm(_ProblemsOnForm, forms.ModelForm):
    class Meta:
        model = Stage
        fields = ["name", "position", "extras"]
        labels = {"extras": "Other fields"}
        help_texts = {"extras": "Stage fields Conveyor keeps but does not use "
                      "(blockers, onFailure, ...), as a JSON object."}


class ActionForm(_ProblemsOnForm, forms.ModelForm):
    class Meta:
        model = Action
        fields = ["name", "category", "owner", "provider", "provider_version", "run_order",
                  "input_artifacts", "output_artifacts", "configuration", "commands",
                  "environment_variables", "namespace", "timeout_in_minutes", "extras",
                  "position"]
        widgets = {"owner": forms.Select(choices=ActionOwner.choices)}
        labels = {"provider_version": "Version", "extras": "Other fields",
                  "input_artifacts": "Input artifacts", "output_artifacts": "Output artifacts"}
        help_texts = {
            "input_artifacts": 'e.g. [{"name": "SourceOutput"}]',
            "output_artifacts": 'e.g. [{"name": "BuildOutput"}]',
            "configuration": "A JSON object of strings; #{Namespace.Variable} and "
            "#{variables.Name} are resolved when the action runs.",
            "commands": 'Shell actions: e.g. ["make test"]',
            "environment_variables": 'e.g. [{"name": "CI", "value": "true"}]',
            "extras": "Action fields Conveyor keeps but does not use (roleArn, region, ...).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        installed = "; ".join(
            f"{spec.category}: {spec.provider}" for spec in providers.all_specs()
        )
        self.fields["provider"].help_text = (
            f"Installed providers — {installed}." if installed else "No provider is installed."
        )


# --- inlines ---------------------------------------------------------------------------


class _JSONInlineMixin:
    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            return _json_field(db_field, db_field.default(), **kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        state = getattr(request, "_conveyor_admin", None)
        if state:
            formset.form = type(formset.form.__name__, (formset.form,),
                                {"problems_by_prefix": state["by_prefix"]})
        return formset


class ActionInline(SortableHiddenMixin, _JSONInlineMixin, NestedStackedInline):
    model = Action
    form = ActionForm
    extra = 0
    sortable_field_name = "position"
    fieldsets = [
        (None, {"fields": [("name", "category", "owner", "provider", "provider_version",
                            "run_order"),
                           ("input_artifacts", "output_artifacts"),
                           "configuration",
                           ("commands", "environment_variables"),
                           ("namespace", "timeout_in_minutes"),
                           "extras", "position"]}),
    ]


class StageInline(SortableHiddenMixin, _JSONInlineMixin, NestedStackedInline):
    model = Stage
    form = StageForm
    extra = 0
    sortable_field_name = "position"
    inlines = [ActionInline]
    fields = ["name", "transition_state", "extras", "position"]
    readonly_fields = ["transition_state"]

    @admin.display(description="Transition")
    def transition_state(self, stage: Stage) -> str:
        if stage.pk is None:
            return "Enabled (a new stage)"
        if stage.transition_enabled:
            return "Enabled"
        when = stage.transition_changed_at.strftime("%Y-%m-%d %H:%M UTC") \
            if stage.transition_changed_at else "an unknown time"
        who = stage.transition_changed_by or "someone"
        return f"Disabled by {who} at {when}: {stage.transition_disabled_reason}"
