"""The admin: where a pipeline owner builds pipelines by clicking.

A pipeline, its stages and their actions are edited on one page (nested
inlines). Saving never writes the rows the forms hold: the forms are saved into
a transaction that is always rolled back, only to rebuild the definition
document from those rows (``services.document_from_rows``), and that document
goes through ``services.pipeline_save`` like any other surface's. So a broken
definition is never saved, and every problem validation finds is shown on the
page, beside the field it is about where there is one (see
``PipelineAdmin.changeform_view``).
"""

import io
import json
import zipfile

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from nested_admin import NestedModelAdmin

from pipelines import (
    admin_triggers,  # noqa: F401 (registers webhooks, schedules, statuses)
    documents,
    services,
)
from pipelines.admin_forms import (
    _ACTION_FIELDS,
    _TOP_FIELDS,
    PipelineAdminForm,
    PrettyJSONField,
    StageInline,
    _field_for,
    _split,
)
from pipelines.models import (
    BuildProject,
    Connection,
    Pipeline,
    PipelineVersion,
    Stage,
)
from pipelines.validation import Problem

# --- the pipeline admin ------------------------------------------------------------------


class _ScratchRolledBack(Exception):
    """Raised to roll back the rows the forms wrote, once the document is built."""

    def __init__(self, document: dict, by_index: dict):
        self.document = document
        self.by_index = by_index


@admin.register(Pipeline)
class PipelineAdmin(NestedModelAdmin):
    form = PipelineAdminForm
    inlines = [StageInline]
    list_display = ["name", "execution_mode", "stage_count", "version", "last_changed"]
    list_filter = ["execution_mode",
                   ("stages__actions__provider", admin.AllValuesFieldListFilter),
                   "updated_at"]
    search_fields = ["name", "stages__name", "stages__actions__name",
                     "stages__actions__provider"]
    ordering = ["-updated_at", "name"]
    readonly_fields = ["version", "created_at", "updated_at", "version_history", "webhook"]
    actions = ["export_json", "export_yaml"]
    save_on_top = True

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["name", "execution_mode"] + (["version"] if obj else [])}),
            ("Push webhook", {"fields": (["webhook"] if obj else [])
                              + ["new_webhook_secret", "remove_webhook_secret"]}),
            ("Definition", {"fields": ["variables", "triggers", "other_fields"],
                            "classes": ["collapse"] if obj is None else []}),
        ]
        if obj is not None:
            fieldsets.append(("History", {"fields": ["version_history", "created_at",
                                                     "updated_at"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # Renaming is not supported by the services: the name is fixed once saved.
        return self.readonly_fields + (["name"] if obj is not None else [])

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(stage_count=Count("stages"))

    @admin.display(description="Stages", ordering="stage_count")
    def stage_count(self, pipeline: Pipeline) -> int:
        return pipeline.stage_count

    @admin.display(description="Last changed", ordering="updated_at")
    def last_changed(self, pipeline: Pipeline):
        return pipeline.updated_at

    @admin.display(description="Webhook URL")
    def webhook(self, pipeline: Pipeline) -> str:
        state = "secret set" if pipeline.webhook_secret else "no secret: pushes are refused"
        return f"/api/hooks/{pipeline.name}/ ({state})"

    @admin.display(description="Versions")
    def version_history(self, pipeline: Pipeline) -> str:
        rows = pipeline.versions.select_related("created_by").order_by("-number")[:10]
        links = format_html_join(
            "", '<tr><td><a href="{}">v{}</a></td><td>{}</td><td>{}</td>'
            '<td><a href="{}">JSON</a> · <a href="{}">YAML</a></td></tr>',
            ((reverse("admin:pipelines_pipelineversion_change", args=[v.pk]), v.number,
              v.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
              v.created_by.get_username() if v.created_by else "—",
              self._export_url(pipeline, "json", v.number),
              self._export_url(pipeline, "yaml", v.number)) for v in rows),
        )
        all_url = reverse("admin:pipelines_pipelineversion_changelist") + \
            f"?pipeline__id__exact={pipeline.pk}"
        return format_html('<table><thead><tr><th>Version</th><th>Saved</th><th>By</th>'
                           '<th>Download</th></tr></thead><tbody>{}</tbody></table>'
                           '<p><a href="{}">All {} versions</a></p>',
                           links, all_url, pipeline.versions.count())

    def _export_url(self, pipeline, fmt, number=None) -> str:
        url = reverse("admin:pipelines_pipeline_export", args=[pipeline.pk]) + f"?format={fmt}"
        return url + (f"&version={number}" if number else "")

    # --- saving: the forms' rows are a scratch pad, the service saves ---------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        response = super().changeform_view(request, object_id, form_url, extra_context)
        state = getattr(request, "_conveyor_admin", None)
        if request.method == "POST" and state and state["problems"]:
            # Nothing was saved. Process the same POST again: this time each form
            # reports the problems that concern it, so the admin shows the page with
            # the user's input and the errors instead of saving.
            response = super().changeform_view(request, object_id, form_url, extra_context)
        return response

    def save_model(self, request, obj, form, change):
        """Nothing is written here: ``save_related`` does it, inside a rolled-back block."""

    def save_related(self, request, form, formsets, change):
        pipeline = form.instance
        original_pk = pipeline.pk
        try:
            with transaction.atomic():
                # document_from_rows takes the fields that are not rows from here.
                pipeline.document = form.document_fields()
                if not change:
                    pipeline.version = 0
                pipeline.save()
                for formset in formsets:
                    self.save_formset(request, form, formset, change=change)
                raise _ScratchRolledBack(services.document_from_rows(pipeline),
                                         _forms_by_index(formsets))
        except _ScratchRolledBack as scratch:
            document, by_index = scratch.document, scratch.by_index
        except IntegrityError as exc:
            # Two rows swapped names in one save: the database sees a duplicate midway.
            pipeline.pk = original_pk
            self._refuse(request, [Problem("stages", f"the rows could not be written ({exc}); "
                                                     "rename in two saves")], {})
            return
        pipeline.pk = original_pk
        try:
            result = services.pipeline_save(
                document=document, user=request.user,
                name=None if not change else pipeline.name, create=not change,
            )
        except services.DefinitionInvalid as exc:
            self._refuse(request, exc.problems, by_index)
            return
        except services.PipelineNotFound:
            self._refuse(request, [Problem("name", "this pipeline was deleted meanwhile")], {})
            return
        pipeline.pk = result.pipeline.pk
        pipeline.refresh_from_db()
        secret = form.cleaned_data.get("new_webhook_secret")
        if secret or form.cleaned_data.get("remove_webhook_secret"):
            try:
                services.pipeline_set_webhook_secret(pipeline=pipeline, secret=secret or "",
                                                     user=request.user)
            except services.DefinitionInvalid as exc:
                self.message_user(request, f"The webhook secret was not changed: "
                                  f"{exc.problems[0]}", messages.ERROR)
        request._conveyor_admin = {"problems": [], "result": result}
        for warning in result.warnings:
            self.message_user(request, str(warning), messages.WARNING)

    def _refuse(self, request, problems: list[Problem], by_index: dict) -> None:
        request._conveyor_admin = {"problems": problems,
                                   "by_prefix": _problems_by_prefix(problems, by_index)}
        errors = [p for p in problems if p.severity == "error"]
        self.message_user(request, f"The definition was not saved: {len(errors)} problem"
                          f"{'s' if len(errors) != 1 else ''}.", messages.ERROR)
        for problem in problems:
            level = messages.ERROR if problem.severity == "error" else messages.WARNING
            self.message_user(request, str(problem), level)

    def _refused(self, request) -> bool:
        state = getattr(request, "_conveyor_admin", None)
        return bool(state and state["problems"])

    def log_addition(self, request, obj, message):
        if not self._refused(request):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not self._refused(request):
            return super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if self._refused(request):
            return HttpResponse(status=400)  # replaced by the second pass
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self._refused(request):
            return HttpResponse(status=400)  # replaced by the second pass
        state = getattr(request, "_conveyor_admin", None)
        if state and "result" in state and not state["result"].changed:
            self.message_user(request, f'No change: "{obj.name}" stays at version '
                              f"{obj.version}.", messages.INFO)
        return super().response_change(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        state = getattr(request, "_conveyor_admin", None)
        if state and state["problems"]:
            by_prefix = dict(state["by_prefix"])
            # The main form always fails on the second pass, so nothing is saved.
            by_prefix[""] = by_prefix.get("", []) or [
                (None, "The definition was not saved: see the problems listed above.")]
            form = type(form.__name__, (form,), {"problems_by_prefix": by_prefix})
        return form

    def get_deleted_objects(self, objs, request):
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        # Versions (and the executions and approvals of other apps) are read-only in
        # the admin: nobody may delete one on its own, but they are the pipeline's
        # history and go with it, as DELETE /api/pipelines/{name}/ does with
        # delete_pipeline alone. The confirmation page still lists them all.
        return deleted, counts, set(), protected

    def delete_model(self, request, obj):
        services.pipeline_delete(pipeline=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for pipeline in queryset:
            services.pipeline_delete(pipeline=pipeline, user=request.user)

    # --- import and export ---------------------------------------------------------------

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view),
                 name="pipelines_pipeline_import"),
            path("<path:object_id>/export/", self.admin_site.admin_view(self.export_view),
                 name="pipelines_pipeline_export"),
        ] + super().get_urls()

    def export_view(self, request, object_id):
        pipeline = get_object_or_404(Pipeline, pk=object_id)
        if not self.has_view_permission(request, pipeline):
            raise PermissionDenied
        fmt = request.GET.get("format", "json")
        if fmt not in ("json", "yaml"):
            fmt = "json"
        number = request.GET.get("version")
        try:
            exported = services.pipeline_export(
                pipeline=pipeline, version=int(number) if number else None)
        except (ValueError, PipelineVersion.DoesNotExist):
            self.message_user(request, f"There is no version {number}.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:pipelines_pipeline_change",
                                                args=[pipeline.pk]))
        suffix = f"-v{number}" if number else ""
        return _download(documents.dump(exported, fmt), f"{pipeline.name}{suffix}.{fmt}", fmt)

    @admin.action(description="Export selected pipelines as JSON", permissions=["view"])
    def export_json(self, request, queryset):
        return _export_many(queryset, "json")

    @admin.action(description="Export selected pipelines as YAML", permissions=["view"])
    def export_yaml(self, request, queryset):
        return _export_many(queryset, "yaml")

    def import_view(self, request):
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        problems: list[Problem] = []
        if request.method == "POST":
            form = ImportForm(request.POST, request.FILES)
            if form.is_valid():
                outcome = self._import(request, form.text())
                if isinstance(outcome, HttpResponse):
                    return outcome
                problems = outcome
        else:
            form = ImportForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import a pipeline definition",
            "form": form,
            "problems": problems,
            "errors": [p for p in problems if p.severity == "error"],
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/pipelines/pipeline/import.html", context)

    def _import(self, request, text: str):
        """Save the document; a redirect on success, else the problems to show."""
        try:
            document, metadata = services.document_load(text)
        except services.DefinitionInvalid as exc:
            return exc.problems
        name = document.get("name") if isinstance(document, dict) else None
        existing = Pipeline.objects.filter(name=name).first() if isinstance(name, str) else None
        allowed = (self.has_change_permission(request, existing) if existing
                   else self.has_add_permission(request))
        if not allowed:
            return [Problem("name", "you may not " + ("change" if existing else "add")
                            + " this pipeline")]
        try:
            result = services.pipeline_save(document=document, metadata=metadata,
                                            user=request.user)
        except services.DefinitionInvalid as exc:
            return exc.problems
        pipeline = result.pipeline
        if result.created:
            self.log_addition(request, pipeline, [{"added": {}}])
            text = f'Imported "{pipeline.name}": created, version {pipeline.version}.'
        elif result.changed:
            self.log_change(request, pipeline, "Imported a new definition.")
            text = f'Imported "{pipeline.name}": updated to version {pipeline.version}.'
        else:
            text = f'Imported "{pipeline.name}": no change, version {pipeline.version} kept.'
        self.message_user(request, text, messages.SUCCESS)
        for warning in result.warnings:
            self.message_user(request, str(warning), messages.WARNING)
        return HttpResponseRedirect(reverse("admin:pipelines_pipeline_change",
                                            args=[pipeline.pk]))


def _forms_by_index(formsets) -> dict:
    """Which form each stage / action of the rebuilt document came from.

    The rows were just written with their positions renumbered 0..n-1 in form
    order (nested_admin's sortable field), and ``document_from_rows`` orders by
    position, so the i-th saved form of a formset is the i-th item of the list.
    Returns {(stage index,): prefix, (stage index, action index): prefix}.
    """
    out: dict = {}
    stage_forms = []
    for formset in formsets:
        if formset.model is Stage:
            stage_forms = _saved_forms(formset)
    for s, stage_form in enumerate(stage_forms):
        out[(s,)] = stage_form.prefix
        for nested in getattr(stage_form, "nested_formsets", []):
            for a, action_form in enumerate(_saved_forms(nested)):
                out[(s, a)] = action_form.prefix
    return out


def _saved_forms(formset) -> list:
    forms_ = [f for f in formset.forms
              if f.instance.pk is not None and not formset._should_delete_form(f)]
    return sorted(forms_, key=lambda f: (f.instance.position, f.instance.pk))


def _problems_by_prefix(problems: list[Problem], by_index: dict) -> dict:
    """{form prefix: [(field or None, message)]}; "" is the pipeline's own form."""
    out: dict = {}
    for problem in problems:
        if problem.severity != "error":
            continue
        parts = _split(problem.path)
        prefix, field = "", None
        if parts[:1] == ["stages"] and len(parts) >= 2 and parts[1].isdigit():
            s = int(parts[1])
            if len(parts) >= 4 and parts[2] == "actions" and parts[3].isdigit() \
                    and (s, int(parts[3])) in by_index:
                prefix = by_index[(s, int(parts[3]))]
                field = _field_for(parts[4:], _ACTION_FIELDS, "extras")
            elif (s,) in by_index:
                prefix = by_index[(s,)]
                field = "name" if parts[2:3] == ["name"] else (
                    None if parts[2:3] == ["actions"] or len(parts) == 2 else "extras")
        elif parts:
            field = _TOP_FIELDS.get(parts[0], None if parts[0] == "stages" else "other_fields")
        out.setdefault(prefix, []).append((field, str(problem)))
    return out


def _download(text: str, filename: str, fmt: str) -> HttpResponse:
    content_type = "application/json" if fmt == "json" else "application/yaml"
    response = HttpResponse(text, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _export_many(queryset, fmt: str) -> HttpResponse:
    pipelines = list(queryset.order_by("name"))
    if len(pipelines) == 1:
        pipeline = pipelines[0]
        return _download(documents.dump(services.pipeline_export(pipeline=pipeline), fmt),
                         f"{pipeline.name}.{fmt}", fmt)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for pipeline in pipelines:
            archive.writestr(f"{pipeline.name}.{fmt}",
                             documents.dump(services.pipeline_export(pipeline=pipeline), fmt))
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="pipelines.zip"'
    return response


class ImportForm(forms.Form):
    document = forms.CharField(
        required=False, label="Paste a definition",
        widget=forms.Textarea(attrs={"rows": 20, "cols": 100, "class": "vLargeTextField",
                                     "spellcheck": "false"}),
        help_text="JSON or YAML: a pipeline object, or get-pipeline output "
        '({"pipeline": …, "metadata": …}). A pipeline of the same name is updated.',
    )
    file = forms.FileField(required=False, label="…or upload a file",
                           help_text=".json, .yaml or .yml")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("document", "").strip() and not cleaned.get("file"):
            raise forms.ValidationError("Paste a document or choose a file.")
        return cleaned

    def text(self) -> str | bytes:
        upload = self.cleaned_data.get("file")
        return upload.read() if upload else self.cleaned_data["document"]


# --- versions: read only -------------------------------------------------------------------


@admin.register(PipelineVersion)
class PipelineVersionAdmin(admin.ModelAdmin):
    list_display = ["pipeline", "number", "created_at", "created_by"]
    list_filter = [("pipeline", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["pipeline__name"]
    list_select_related = ["pipeline", "created_by"]
    ordering = ["pipeline__name", "-number"]
    fields = ["pipeline", "number", "created_at", "created_by", "downloads", "definition",
              "imported_metadata_pretty"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Definition")
    def definition(self, version: PipelineVersion) -> str:
        doc = documents.with_version(version.document, version.number)
        return format_html('<pre class="json">{}</pre>', documents.dump(doc, "json"))

    @admin.display(description="Imported metadata")
    def imported_metadata_pretty(self, version: PipelineVersion) -> str:
        if not version.imported_metadata:
            return "—"
        return format_html('<pre class="json">{}</pre>',
                           json.dumps(version.imported_metadata, indent=2))

    @admin.display(description="Download")
    def downloads(self, version: PipelineVersion) -> str:
        base = reverse("admin:pipelines_pipeline_export", args=[version.pipeline_id])
        return format_html('<a href="{}?format=json&version={}">JSON</a> · '
                           '<a href="{}?format=yaml&version={}">YAML</a>',
                           base, version.number, base, version.number)


# --- connections -------------------------------------------------------------------

_CONNECTION_FIELDS = {"name": "name", "provider": "provider", "baseUrl": "base_url",
                      "username": "username", "token": "token", "sshKey": "ssh_key"}


class ConnectionAdminForm(forms.ModelForm):
    """A connection; the credential fields are write-only (never filled in from the row)."""

    arns = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 90}),
        help_text="One per line: the ConnectionArn values of your pipelines (* matches "
                  "anything), or codecommit:REPOSITORY (codecommit:* for every CodeCommit "
                  "repository).")
    token = forms.CharField(required=False, strip=True,
                            widget=forms.PasswordInput(render_value=False),
                            help_text="A personal access or app token, sent over HTTPS. "
                                      "Left empty: the stored credential is kept.")
    ssh_key = forms.CharField(required=False, strip=False, label="SSH private key",
                              widget=forms.Textarea(attrs={"rows": 4, "cols": 90,
                                                           "autocomplete": "off"}),
                              help_text="For ssh:// or git@host: base URLs. Never shown "
                                        "back; left empty: the stored credential is kept.")
    clear_credential = forms.BooleanField(required=False,
                                          help_text="Remove the stored credential.")

    class Meta:
        model = Connection
        fields = ["name", "provider", "base_url", "username"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["arns"] = "\n".join(a.arn for a in self.instance.arns.all())

    def arn_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("arns", "").splitlines()
                if line.strip()]

    def validate_unique(self):
        pass  # connection_check reports a taken name with the other problems

    def clean(self):
        data = super().clean()
        problems = services.connection_check(
            name=data.get("name", ""), provider=data.get("provider", ""),
            base_url=(data.get("base_url") or "").strip().rstrip("/"), arns=self.arn_list(),
            username=data.get("username", ""), token=data.get("token") or None,
            ssh_key=data.get("ssh_key") or None,
            connection=self.instance if self.instance.pk else None)
        for problem in problems:
            field = _CONNECTION_FIELDS.get(problem.path, "arns")  # arns[i] -> arns
            self.add_error(field, problem.message)
        return data


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    """Connections: saving goes through ``services.connection_save`` (the credential encrypted)."""

    form = ConnectionAdminForm
    list_display = ["name", "provider", "base_url", "answers_to", "credential"]
    search_fields = ["name", "base_url", "arns__arn"]
    fields = ["name", "provider", "base_url", "arns", "username", "credential", "token",
              "ssh_key", "clear_credential"]
    readonly_fields = ["credential"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("arns")

    @admin.display(description="answers to")
    def answers_to(self, obj):
        return ", ".join(a.arn for a in obj.arns.all())

    @admin.display(description="credential")
    def credential(self, obj):
        return obj.get_credential_kind_display() if obj and obj.credential_encrypted else "none"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            saved = services.connection_save(
                connection=obj if change else None, name=data["name"],
                provider=data["provider"], base_url=data["base_url"], arns=form.arn_list(),
                username=data.get("username", ""), token=data.get("token") or None,
                ssh_key=data.get("ssh_key") or None,
                clear_credential=data.get("clear_credential", False))
        except services.ConnectionInvalid as exc:  # a race since clean(): say so, save nothing
            raise PermissionDenied(str(exc)) from exc
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        pass  # connection_save wrote the ARNs



# --- build projects ---------------------------------------------------------------

_PROJECT_FIELDS = {"name": "name", "description": "description", "source": "buildspec",
                   "environment.computeType": "compute_type",
                   "environment.environmentVariables": "environment_variables",
                   "environment": "environment_variables",
                   "timeoutInMinutes": "timeout_in_minutes", "cache": "cache_paths",
                   "network": "network"}


class BuildProjectForm(forms.ModelForm):
    """Checks the project as every surface does (``services.build_project_problems``):
    each problem is shown beside its field, an inline buildspec's at the buildspec."""

    environment_variables = PrettyJSONField(empty=[], help_text=(
        'A list of {"name", "value", "type"}: type PLAINTEXT, PARAMETER_STORE or '
        "SECRETS_MANAGER (the last two name one of Conveyor's secrets)."))
    cache_paths = PrettyJSONField(empty=[], help_text=(
        "Paths kept between this project's builds, added to the buildspec's cache.paths."))

    class Meta:
        model = BuildProject
        fields = ["name", "description", "buildspec", "environment_variables",
                  "timeout_in_minutes", "compute_type", "cache_paths", "network"]
        widgets = {"buildspec": forms.Textarea(attrs={"rows": 12, "cols": 90,
                                                      "class": "vLargeTextField"})}

    def clean(self):
        data = super().clean()
        document = {
            "name": data.get("name") or "", "description": data.get("description") or "",
            "source": {"buildspec": data.get("buildspec") or ""},
            "environment": {"computeType": data.get("compute_type"),
                            "environmentVariables": data.get("environment_variables") or []},
            "timeoutInMinutes": data.get("timeout_in_minutes"),
            "cache": {"paths": data.get("cache_paths") or []},
            "network": data.get("network") or "host",
        }
        for problem in services.build_project_problems(document):
            if problem.severity != "error":
                continue
            field = next((f for key, f in _PROJECT_FIELDS.items()
                          if problem.path == key or problem.path.startswith(key + ".")
                          or problem.path.startswith(key + "[")), None)
            if field in self.fields:
                self.add_error(field, str(problem))
            else:
                self.add_error(None, str(problem))
        return data


@admin.register(BuildProject)
class BuildProjectAdmin(admin.ModelAdmin):
    """Build projects: what a CodeBuild action's ProjectName names."""

    form = BuildProjectForm
    list_display = ["name", "compute_type", "network", "timeout_in_minutes", "build_count",
                    "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["build_count", "created_at", "updated_at"]
