"""Build projects: REST, import/export commands and the admin, with the three personas."""

from __future__ import annotations

import json
import textwrap
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pipelines.models import BuildProject
from pipelines.services import build_project_export, build_project_save

pytestmark = pytest.mark.django_db

LIST = "/api/build-projects/"

INLINE = textwrap.dedent("""\
    version: 0.2
    phases:
      build:
        commands: [make]
    """)


def project(**fields) -> dict:
    return {"name": "web-build", "description": "Builds the site",
            "source": {"buildspec": "ci/buildspec.yml"},
            "environment": {"computeType": "BUILD_GENERAL1_MEDIUM", "environmentVariables": [
                {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
                {"name": "TOKEN", "value": "ci/token", "type": "SECRETS_MANAGER"}]},
            "timeoutInMinutes": 30, "cache": {"paths": ["node_modules/**/*"]},
            "network": "none", **fields}


def test_an_owner_creates_reads_replaces_and_deletes_a_project(api, owner):
    client = api(owner)
    created = client.post(LIST, project(), format="json")
    assert created.status_code == 201, created.json()
    assert created.json() == {**project(), "warnings": []}
    assert client.get(LIST).json()["results"] == [project()]
    assert client.post(LIST, project(), format="json").status_code == 409
    replaced = client.put(f"{LIST}web-build/", project(timeoutInMinutes=90), format="json")
    assert replaced.status_code == 200
    assert client.get(f"{LIST}web-build/").json()["timeoutInMinutes"] == 90
    assert BuildProject.objects.get().network == "none"
    assert client.delete(f"{LIST}web-build/").status_code == 204
    assert not BuildProject.objects.exists()


def test_a_viewer_reads_projects_but_cannot_change_them_and_an_outsider_sees_none(
        api, owner, viewer, outsider):
    build_project_save(document=project())
    assert api(viewer).get(f"{LIST}web-build/").status_code == 200
    assert api(viewer).post(LIST, project(name="other"), format="json").status_code == 403
    assert api(viewer).delete(f"{LIST}web-build/").status_code == 403
    assert api(outsider).get(LIST).status_code == 403
    assert api().get(LIST).status_code == 401


def test_every_problem_is_answered_at_its_path_and_aws_only_fields_are_warnings(api, owner):
    body = project(serviceRole="arn:aws:iam::1:role/cb", timeoutInMinutes=3,
                   source={"buildspec": INLINE + "run-as: builder\n", "type": "GITHUB"},
                   environment={"computeType": "HUGE", "image": "aws/codebuild/standard:7.0",
                                "environmentVariables": [{"name": "A B", "value": "x",
                                                          "type": "SSM"}]})
    response = api(owner).post(LIST, body, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert [(e["path"], e["message"]) for e in answer["errors"]] == [
        ("source.buildspec.run-as", "builds here run as the sandbox's one user: running "
         "commands as another user is not supported (remove run-as)"),
        ("environment.computeType", '"HUGE" is not a compute type: use BUILD_GENERAL1_SMALL, '
         "BUILD_GENERAL1_MEDIUM, BUILD_GENERAL1_LARGE, BUILD_GENERAL1_XLARGE, "
         "BUILD_GENERAL1_2XLARGE"),
        ("environment.environmentVariables[0].name", '"A B" is not an environment variable '
         "name"),
        ("environment.environmentVariables[0].type", '"SSM" is not a type: use PLAINTEXT, '
         "PARAMETER_STORE, SECRETS_MANAGER"),
        ("timeoutInMinutes", "must be a whole number of minutes from 5 to 2160, not 3"),
    ]
    assert [w["path"] for w in answer["warnings"]] == ["serviceRole", "source.type",
                                                       "environment.image"]
    assert not BuildProject.objects.exists()


def test_an_aws_project_imports_with_warnings_and_exports_back_unchanged(tmp_path):
    aws_answer = {"projects": [{
        "name": "web-build", "arn": "arn:aws:codebuild:us-east-1:1:project/web-build",
        "source": {"type": "CODEPIPELINE", "buildspec": INLINE},
        "artifacts": {"type": "CODEPIPELINE"},
        "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                        "computeType": "BUILD_GENERAL1_LARGE", "environmentVariables": []},
        "serviceRole": "arn:aws:iam::1:role/cb", "timeoutInMinutes": 60,
        "cache": {"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE"]}}]}
    path = tmp_path / "project.json"
    path.write_text(json.dumps(aws_answer))
    out = StringIO()
    call_command("import_build_project", str(path), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == 'created build project "web-build"'
    assert "warning: artifacts: not used: kept by AWS only, builds here do not read it" in lines
    assert "warning: environment.image: not used: builds run with the tools of the machine " \
           "(or agent) that runs them" in lines
    exported = StringIO()
    call_command("export_build_project", "web-build", "--format", "yaml", stdout=exported)
    (tmp_path / "back.yaml").write_text(exported.getvalue())
    before = build_project_export(BuildProject.objects.get())
    call_command("import_build_project", str(tmp_path / "back.yaml"), stdout=StringIO())
    assert build_project_export(BuildProject.objects.get()) == before
    assert before["source"]["buildspec"] == INLINE


def test_a_refused_import_names_each_problem_and_changes_nothing(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(project(cache={"paths": "node_modules"})))
    err = StringIO()
    with pytest.raises(CommandError, match="refused, 1 problem"):
        call_command("import_build_project", str(path), stderr=err)
    assert "error: cache.paths: must be a list of paths" in err.getvalue()
    assert not BuildProject.objects.exists()


def test_the_admin_saves_a_project_and_shows_a_buildspec_problem_beside_it(client, owner):
    client.force_login(owner)
    form = {"name": "web-build", "description": "", "buildspec": INLINE,
            "environment_variables": "[]", "timeout_in_minutes": "60",
            "compute_type": "BUILD_GENERAL1_SMALL", "cache_paths": '["vendor/**/*"]',
            "network": "none"}
    saved = client.post("/admin/pipelines/buildproject/add/", form)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert BuildProject.objects.get().cache_paths == ["vendor/**/*"]
    assert BuildProject.objects.get().network == "none"
    refused = client.post("/admin/pipelines/buildproject/add/",
                          {**form, "name": "other", "buildspec": INLINE + "proxy: {}\n"})
    assert refused.status_code == 200
    assert "source.buildspec.proxy: proxy servers for builds are not supported here" in \
        refused.content.decode()
    assert BuildProject.objects.count() == 1


def test_a_project_network_other_than_host_or_none_is_refused_at_its_path(api, owner):
    response = api(owner).post(LIST, project(network="vpc"), format="json")
    assert response.status_code == 400
    assert [(e["path"], e["message"]) for e in response.json()["errors"]] == [
        ("network", '"vpc" is not a network setting: use "host" (the network of the machine, '
         'the default) or "none" (no network at all)')]
    assert not BuildProject.objects.exists()


def test_a_project_without_network_takes_the_machines_and_exports_it():
    document = {"name": "plain"}
    build_project_save(document=document)
    assert build_project_export(BuildProject.objects.get())["network"] == "host"
