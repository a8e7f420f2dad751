"""The admin as a pipeline owner uses it: building, editing, importing, exporting."""

import io
import json
import zipfile
from html.parser import HTMLParser

import pytest
import yaml
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from pipelines import services
from pipelines.models import Pipeline, Stage
from tests.factories import action, definition
from tests.pipelines.conftest import load_fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("known_providers")]

ADD = "/admin/pipelines/pipeline/add/"
IMPORT = "/admin/pipelines/pipeline/import/"


def change_url(pipeline):
    return reverse("admin:pipelines_pipeline_change", args=[pipeline.pk])


def export_url(pipeline, fmt="json", version=None):
    url = reverse("admin:pipelines_pipeline_export", args=[pipeline.pk]) + f"?format={fmt}"
    return url + (f"&version={version}" if version else "")


class _FormScraper(HTMLParser):
    """What a browser would post back from the page's main form, unchanged."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._textarea = self._select = None
        self._option_value = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file"):
                return
            if kind == "checkbox":
                if "checked" in attrs:
                    self.data[name] = attrs.get("value", "on")
                return
            self.data[name] = attrs.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.removeprefix("\n") \
                if not self.data[self._textarea] else data


def scrape(response) -> dict:
    parser = _FormScraper()
    parser.feed(response.content.decode())
    return {k: v for k, v in parser.data.items()
            if "__prefix__" not in k and "-empty-" not in k and k not in ("robots", "viewport")}


def add_form_data(doc: dict) -> dict:
    """The add page filled in by hand: one stage form per stage, one action form per action."""
    other = {k: v for k, v in doc.items()
             if k not in ("name", "executionMode", "stages", "variables", "triggers", "version")}
    data = {
        "name": doc["name"], "execution_mode": doc.get("executionMode", "SUPERSEDED"),
        "variables": json.dumps(doc.get("variables", [])),
        "triggers": json.dumps(doc.get("triggers", [])),
        "other_fields": json.dumps(other),
        **_management("stages", len(doc["stages"])),
    }
    for s, stage in enumerate(doc["stages"]):
        p = f"stages-{s}"
        data.update({f"{p}-name": stage["name"], f"{p}-position": str(s),
                     f"{p}-extras": json.dumps({k: v for k, v in stage.items()
                                                if k not in ("name", "actions")}),
                     **_management(f"{p}-actions", len(stage["actions"]))})
        for a, act in enumerate(stage["actions"]):
            q = f"{p}-actions-{a}"
            type_id = act["actionTypeId"]
            known = {"name", "actionTypeId", "runOrder", "configuration", "inputArtifacts",
                     "outputArtifacts", "namespace", "timeoutInMinutes", "commands",
                     "environmentVariables"}
            data.update({
                f"{q}-name": act["name"], f"{q}-category": type_id["category"],
                f"{q}-owner": type_id.get("owner", "Custom"),
                f"{q}-provider": type_id["provider"],
                f"{q}-provider_version": str(type_id.get("version", "1")),
                f"{q}-run_order": str(act.get("runOrder", 1)),
                f"{q}-configuration": json.dumps(act.get("configuration", {})),
                f"{q}-input_artifacts": json.dumps(act.get("inputArtifacts", [])),
                f"{q}-output_artifacts": json.dumps(act.get("outputArtifacts", [])),
                f"{q}-commands": json.dumps(act.get("commands", [])),
                f"{q}-environment_variables": json.dumps(act.get("environmentVariables", [])),
                f"{q}-namespace": act.get("namespace", ""),
                f"{q}-timeout_in_minutes": str(act.get("timeoutInMinutes", "")),
                f"{q}-extras": json.dumps({k: v for k, v in act.items() if k not in known}),
                f"{q}-position": str(a),
            })
    return data


def _management(prefix: str, total: int) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def five_stage_definition() -> dict:
    src = [{"name": "Src"}]
    return definition(name="release", executionMode="QUEUED",
                      variables=[{"name": "Env", "defaultValue": "staging"}],
                      roleArn="arn:aws:iam::1:role/conveyor", stages=[
        ("Source", [action("Checkout", "Source", "Git", namespace="SourceVariables",
                           configuration={"RepositoryUrl": "/srv/app.git", "BranchName": "main"},
                           outputArtifacts=src)]),
        ("Build", [action("Compile", commands=["make"], inputArtifacts=src,
                          outputArtifacts=[{"name": "App", "files": ["dist/**"]}],
                          environmentVariables=[{"name": "COMMIT",
                                                 "value": "#{SourceVariables.CommitId}"}]),
                   action("Lint", commands=["ruff check ."], inputArtifacts=src)]),
        ("Test", [action("Unit", "Test", commands=["pytest"], inputArtifacts=src,
                         timeoutInMinutes=20),
                  action("Smoke", "Test", commands=["./smoke"], runOrder=2,
                         inputArtifacts=[{"name": "App"}])]),
        ("Approve", [action("Review", "Approval", "Manual",
                            configuration={"CustomData": "Deploy to #{variables.Env}?"})]),
        ("Deploy", [action("Release", "Deploy", "Directory", inputArtifacts=[{"name": "App"}],
                           configuration={"TargetDirectory": "/srv/app"}, region="local")]),
    ])


@pytest.fixture
def admin_session(client, owner):
    client.force_login(owner)
    return client


# --- building a pipeline by clicking ----------------------------------------------------


def test_a_five_stage_pipeline_built_in_the_admin_exports_and_reimports_unchanged(admin_session):
    doc = five_stage_definition()
    response = admin_session.post(ADD, add_form_data(doc))
    assert response.status_code == 302, [m.message for m in response.wsgi_request._messages]
    pipeline = Pipeline.objects.get(name="release")
    assert pipeline.version == 1
    assert [s.name for s in pipeline.stages.all()] == [
        "Source", "Build", "Test", "Approve", "Deploy"]

    exported = admin_session.get(export_url(pipeline))
    assert exported["Content-Disposition"] == 'attachment; filename="release.json"'
    body = json.loads(exported.content)
    expected = {**services.pipeline_export(pipeline=pipeline)["pipeline"]}
    assert body["pipeline"] == expected
    from pipelines.documents import normalize
    assert {k: v for k, v in body["pipeline"].items() if k != "version"} == normalize(doc)

    for fmt in ("json", "yaml"):
        text = admin_session.get(export_url(pipeline, fmt)).content.decode()
        response = admin_session.post(IMPORT, {"document": text})
        assert response.status_code == 302
        pipeline.refresh_from_db()
        assert pipeline.version == 1
        assert pipeline.versions.count() == 1
    follow = admin_session.get(change_url(pipeline))
    assert follow.status_code == 200


def test_a_broken_definition_is_not_saved_and_every_problem_is_shown(admin_session):
    doc = five_stage_definition()
    doc["stages"][2]["actions"][1]["inputArtifacts"] = [{"name": "Missing"}]
    doc["stages"][4]["actions"][0]["runOrder"] = 1000
    doc["stages"][1]["actions"][0]["environmentVariables"][0]["value"] = "#{Nope.Dir}"
    response = admin_session.post(ADD, add_form_data(doc))
    assert response.status_code == 200
    page = response.content.decode()
    assert "The definition was not saved: 3 problems." in page
    assert ("stages[2].actions[1].inputArtifacts[0]: artifact &quot;Missing&quot; is not "
            "produced by any earlier action") in page
    assert ("stages[1].actions[0].environmentVariables[0].value: &quot;#{Nope.Dir}&quot; "
            "refers to namespace &quot;Nope&quot;, which no earlier action defines") in page
    assert "stages[4].actions[0].runOrder: must be between 1 and 999, not 1000" in page
    # Each problem is also beside the form it is about.
    action_form = _inline_form(response, "stages-2-actions-1")
    assert action_form.errors["input_artifacts"] == [
        'stages[2].actions[1].inputArtifacts[0]: artifact "Missing" is not produced by any '
        "earlier action"]
    assert _inline_form(response, "stages-1-actions-0").errors["environment_variables"]
    assert _inline_form(response, "stages-4-actions-0").errors["run_order"]
    # The user's input is still there to fix.
    assert scrape(response)["stages-2-actions-1-input_artifacts"].replace(" ", "").replace(
        "\n", "") == '[{"name":"Missing"}]'
    assert not Pipeline.objects.exists()
    assert not Stage.objects.exists()
    assert not LogEntry.objects.exists()


def _inline_form(response, prefix):
    for formset in response.context["inline_admin_formsets"]:
        for admin_form in formset:
            if admin_form.form.prefix == prefix:
                return admin_form.form
            for nested in getattr(admin_form.form, "nested_formsets", []):
                for form in nested.forms:
                    if form.prefix == prefix:
                        return form
    raise AssertionError(f"no form {prefix}")


def test_two_stages_with_one_name_are_refused_on_the_form(admin_session):
    doc = five_stage_definition()
    doc["stages"][2]["name"] = "Build"
    response = admin_session.post(ADD, add_form_data(doc))
    assert response.status_code == 200
    assert "Please correct the duplicate data for name" in response.content.decode()
    assert not Pipeline.objects.exists()


def test_a_stage_without_actions_is_reported_on_the_stage(admin_session):
    doc = definition()
    doc["stages"].append({"name": "Empty", "actions": []})
    response = admin_session.post(ADD, add_form_data(doc))
    assert response.status_code == 200
    assert _inline_form(response, "stages-2").non_field_errors() == [
        "stages[2].actions: a stage needs at least one action"]


def test_an_unknown_provider_is_reported_on_its_field(admin_session):
    doc = definition()
    doc["stages"][1]["actions"][0]["actionTypeId"]["provider"] = "Gradle"
    response = admin_session.post(ADD, add_form_data(doc))
    assert response.status_code == 200
    assert _inline_form(response, "stages-1-actions-0").errors["provider"] == [
        'stages[1].actions[0].actionTypeId.provider: "Gradle" is not a provider of category '
        "Build: use CodeBuild, Shell"]


def test_a_bad_top_level_field_is_reported_on_its_field(admin_session):
    doc = definition(pipelineType="V3")
    response = admin_session.post(ADD, add_form_data(doc))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["other_fields"] == [
        'pipelineType: "V3" is not a pipeline type: use V1 or V2']


def test_aws_only_providers_save_with_warnings_shown(admin_session):
    doc = load_fixture("tic-tac-toe-pipeline-github-v1-ecs.json")["pipeline"]
    response = admin_session.post(ADD, add_form_data(doc), follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert ('stages[2].actions[0].actionTypeId.provider: provider "ECS" exists only on AWS: '
            "this action cannot run in Conveyor") in shown
    assert Pipeline.objects.get().version == 1


# --- editing ------------------------------------------------------------------------------


def saved(doc=None):
    return services.pipeline_save(document=doc or five_stage_definition()).pipeline


def test_saving_the_change_form_unchanged_keeps_the_version(admin_session):
    pipeline = saved()
    form = admin_session.get(change_url(pipeline))
    response = admin_session.post(change_url(pipeline), scrape(form), follow=True)
    assert response.status_code == 200
    assert any("No change" in str(m) for m in response.context["messages"])
    pipeline.refresh_from_db()
    assert pipeline.version == 1 and pipeline.versions.count() == 1


def test_editing_an_action_makes_a_new_version_and_keeps_transitions(admin_session, owner):
    pipeline = saved()
    build = pipeline.stages.get(name="Build")
    services.stage_transition_set(stage=build, enabled=False, reason="freeze", user=owner)
    data = scrape(admin_session.get(change_url(pipeline)))
    assert data["stages-1-actions-0-commands"].split() == ["[", '"make"', "]"]
    data["stages-1-actions-0-commands"] = '["make", "make check"]'
    response = admin_session.post(change_url(pipeline), data)
    assert response.status_code == 302
    pipeline.refresh_from_db()
    assert pipeline.version == 2
    compile_ = pipeline.document["stages"][1]["actions"][0]
    assert compile_["commands"] == ["make", "make check"]
    build = pipeline.stages.get(name="Build")
    assert (build.transition_enabled, build.transition_disabled_reason) == (False, "freeze")
    assert pipeline.versions.get(number=1).document["stages"][1]["actions"][0]["commands"] == [
        "make"]


def test_the_change_form_shows_each_stage_transition_read_only(admin_session, owner):
    pipeline = saved()
    services.stage_transition_set(stage=pipeline.stages.get(name="Deploy"), enabled=False,
                                  reason="release freeze", user=owner)
    page = admin_session.get(change_url(pipeline)).content.decode()
    assert "Disabled by olivia at " in page and ": release freeze" in page
    assert page.count(">Enabled<") == 4
    assert "transition_enabled" not in page


def test_deleting_a_stage_in_the_form_saves_a_version_without_it(admin_session):
    pipeline = saved()
    data = scrape(admin_session.get(change_url(pipeline)))
    data["stages-3-DELETE"] = "on"  # the approval stage
    response = admin_session.post(change_url(pipeline), data)
    assert response.status_code == 302
    pipeline.refresh_from_db()
    assert pipeline.version == 2
    assert [s["name"] for s in pipeline.document["stages"]] == [
        "Source", "Build", "Test", "Deploy"]


def test_reordering_stages_by_position_is_validated(admin_session):
    pipeline = saved()
    data = scrape(admin_session.get(change_url(pipeline)))
    data["stages-0-position"], data["stages-1-position"] = "1", "0"  # Build before Source
    response = admin_session.post(change_url(pipeline), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "stages[0].actions[0].actionTypeId.category: the first stage holds only Source " \
           "actions, this one is Build" in page
    pipeline.refresh_from_db()
    assert pipeline.version == 1
    assert [s.name for s in pipeline.stages.all()][:2] == ["Source", "Build"]


def test_a_broken_edit_leaves_the_rows_and_version_untouched(admin_session):
    pipeline = saved()
    before = list(pipeline.stages.values_list("pk", "name", "position"))
    data = scrape(admin_session.get(change_url(pipeline)))
    data["stages-1-actions-0-output_artifacts"] = '[{"name": "Src"}]'
    response = admin_session.post(change_url(pipeline), data)
    assert response.status_code == 200
    assert ('stages[1].actions[0].outputArtifacts[0].name: artifact "Src" is already '
            "produced by stages[0].actions[0]") in [str(m) for m in response.context["messages"]]
    pipeline.refresh_from_db()
    assert pipeline.version == 1
    assert list(pipeline.stages.values_list("pk", "name", "position")) == before
    assert pipeline.stages.get(name="Build").actions.get(name="Compile").output_artifacts == [
        {"name": "App", "files": ["dist/**"]}]


def test_invalid_json_in_a_field_is_an_error_on_that_field(admin_session):
    pipeline = saved()
    data = scrape(admin_session.get(change_url(pipeline)))
    data["stages-0-actions-0-configuration"] = '{"RepositoryUrl": '
    response = admin_session.post(change_url(pipeline), data)
    assert response.status_code == 200
    assert _inline_form(response, "stages-0-actions-0").errors["configuration"] == [
        "Enter a valid JSON."]


def test_json_fields_are_shown_as_indented_json(admin_session):
    pipeline = saved()
    data = scrape(admin_session.get(change_url(pipeline)))
    shown = data["stages-0-actions-0-configuration"]
    assert json.loads(shown) == {"RepositoryUrl": "/srv/app.git", "BranchName": "main"}
    assert shown == json.dumps(json.loads(shown), indent=2)  # key order is the database's


def test_the_version_history_links_every_version(admin_session):
    pipeline = saved()
    services.pipeline_save(document=five_stage_definition() | {"executionMode": "PARALLEL"})
    page = admin_session.get(change_url(pipeline)).content.decode()
    assert ">v2</a>" in page and ">v1</a>" in page
    assert "All 2 versions" in page
    old = admin_session.get(export_url(pipeline, "yaml", 1))
    assert yaml.safe_load(old.content)["pipeline"]["executionMode"] == "QUEUED"
    assert old["Content-Disposition"] == 'attachment; filename="release-v1.yaml"'


def test_a_version_is_readable_but_not_editable(admin_session):
    pipeline = saved()
    version = pipeline.versions.get()
    url = reverse("admin:pipelines_pipelineversion_change", args=[version.pk])
    page = admin_session.get(url)
    assert page.status_code == 200
    assert "&quot;Checkout&quot;" in page.content.decode()
    assert admin_session.post(url, {}).status_code == 403
    delete = reverse("admin:pipelines_pipelineversion_delete", args=[version.pk])
    assert admin_session.post(delete, {"post": "yes"}).status_code == 403
    assert admin_session.get(reverse("admin:pipelines_pipelineversion_add")).status_code == 403


# --- the list ----------------------------------------------------------------------------


def test_the_list_shows_what_an_owner_scans_for(admin_session):
    saved()
    saved(definition(name="tiny"))
    response = admin_session.get("/admin/pipelines/pipeline/")
    page = response.content.decode()
    for header in ("Name", "Execution mode", "Stages", "Version", "Last changed"):
        assert header in page
    rows = response.context["cl"].result_list
    assert [(p.name, p.stage_count, p.version) for p in rows] == [("tiny", 2, 1),
                                                                  ("release", 5, 1)]
    assert "Import a definition" in page


def test_the_list_searches_stage_action_and_provider_names(admin_session):
    saved()
    saved(definition(name="tiny"))
    def names(**query):
        return [p.name for p in admin_session.get("/admin/pipelines/pipeline/", query)
                .context["cl"].result_list]
    assert names(q="Directory") == ["release"]
    assert names(q="Approve") == ["release"]
    assert names(execution_mode__exact="QUEUED") == ["release"]
    assert sorted(names(stages__actions__provider="Shell")) == ["release", "tiny"]


def test_deleting_in_the_admin_removes_the_pipeline(admin_session):
    pipeline = saved()
    url = reverse("admin:pipelines_pipeline_delete", args=[pipeline.pk])
    assert admin_session.post(url, {"post": "yes"}).status_code == 302
    assert not Pipeline.objects.exists()


def test_the_export_action_downloads_one_document_or_a_zip(admin_session):
    one, two = saved(), saved(definition(name="tiny"))
    response = admin_session.post("/admin/pipelines/pipeline/", {
        "action": "export_yaml", "_selected_action": [one.pk]})
    assert yaml.safe_load(response.content)["pipeline"]["name"] == "release"
    response = admin_session.post("/admin/pipelines/pipeline/", {
        "action": "export_json", "_selected_action": [one.pk, two.pk]})
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["release.json", "tiny.json"]
    assert json.loads(archive.read("tiny.json"))["pipeline"]["name"] == "tiny"


# --- import page -------------------------------------------------------------------------------


def test_importing_pasted_yaml_creates_the_pipeline(admin_session):
    text = yaml.safe_dump({"pipeline": definition(name="pasted")})
    response = admin_session.post(IMPORT, {"document": text}, follow=True)
    assert response.status_code == 200
    assert 'Imported "pasted": created, version 1.' in [
        str(m) for m in response.context["messages"]]
    assert Pipeline.objects.get().name == "pasted"


def test_importing_an_uploaded_file_updates_the_pipeline(admin_session):
    saved(definition(name="up"))
    upload = SimpleUploadedFile("up.json", json.dumps(definition(
        name="up", executionMode="PARALLEL")).encode(), content_type="application/json")
    response = admin_session.post(IMPORT, {"file": upload}, follow=True)
    assert 'Imported "up": updated to version 2.' in [
        str(m) for m in response.context["messages"]]


def test_an_aws_export_imports_with_its_warnings(admin_session):
    text = json.dumps(load_fixture("secureops-pipeline-ecs-deploy.json"))
    response = admin_session.post(IMPORT, {"document": text}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert 'Imported "secureops-pipeline": created, version 1.' in shown
    # The source connection and the ECS deploy; its CodeBuild action runs here.
    assert len([m for m in shown if "exists only on AWS" in m]) == 2


def test_an_import_with_problems_shows_them_and_saves_nothing(admin_session):
    text = json.dumps(load_fixture("awsdocs-trigger-filters-MyServicePipeline-partial.json"))
    response = admin_session.post(IMPORT, {"document": text})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The definition was not saved: 2 problems." in page
    assert "<code>stages</code>: a pipeline needs at least 2 stages, this one has 1" in page
    assert "<code>stages[0].actions[0].actionTypeId</code>: is required" in page
    assert "MyServicePipeline" in page  # the pasted text is kept
    assert not Pipeline.objects.exists()


def test_an_import_of_text_that_is_not_yaml_says_where(admin_session):
    response = admin_session.post(IMPORT, {"document": "name: [x"})
    assert "not valid JSON or YAML at line 1" in response.content.decode()


def test_the_import_page_needs_a_document(admin_session):
    response = admin_session.post(IMPORT, {"document": "  "})
    assert "Paste a document or choose a file." in response.content.decode()


def test_the_import_page_is_for_staff_with_add_or_change_permission(client, viewer, owner):
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    assert client.get(IMPORT).status_code == 403
    client.force_login(owner)
    assert client.get(IMPORT).status_code == 200


def test_an_operator_cannot_reach_the_admin(client, operator):
    client.force_login(operator)
    response = client.get("/admin/pipelines/pipeline/")
    assert response.status_code == 302 and "/login/" in response["Location"]
