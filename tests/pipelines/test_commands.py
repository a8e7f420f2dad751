"""``manage.py import_pipeline`` and ``export_pipeline``."""

import io
import json

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from pipelines import services
from pipelines.models import Pipeline
from tests.factories import definition
from tests.pipelines.conftest import FIXTURES

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("known_providers")]


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path, doc, name="demo.json", fmt="json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc))
    return str(path)


def test_import_prints_created_updated_and_unchanged_with_the_version(tmp_path):
    path = write(tmp_path, definition())
    assert run("import_pipeline", path)[0] == 'created pipeline "demo" (version 1)\n'
    assert run("import_pipeline", path)[0] == 'unchanged pipeline "demo" (version 1)\n'
    path = write(tmp_path, definition(executionMode="QUEUED"), "demo.yaml", "yaml")
    assert run("import_pipeline", path)[0] == 'updated pipeline "demo" to version 2\n'


def test_import_prints_the_warnings_of_an_aws_export():
    out, _ = run("import_pipeline", str(FIXTURES / "awscli-get-pipeline-MyFirstPipeline.json"))
    assert out.splitlines() == [
        'created pipeline "MyFirstPipeline" (version 1)',
        'warning: stages[0].actions[0].actionTypeId.provider: provider "S3" exists only on '
        "AWS: this action cannot run in Conveyor",
        'warning: stages[1].actions[0].actionTypeId.provider: provider "CodeDeploy" exists '
        "only on AWS: this action cannot run in Conveyor",
    ]


def test_import_prints_each_problem_on_its_line_and_fails(tmp_path):
    doc = definition()
    doc["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "Nope"}]
    doc["stages"][1]["name"] = "Source"
    path = write(tmp_path, doc)
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"demo.json: refused, 2 problems"):
        call_command("import_pipeline", path, stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        'error: stages[1].name: stage name "Source" is used twice',
        'error: stages[1].actions[0].inputArtifacts[0]: artifact "Nope" is not produced by '
        "any earlier action",
    ]
    assert not Pipeline.objects.exists()


def test_import_exits_non_zero_from_the_command_line(tmp_path):
    import subprocess
    import sys

    from django.conf import settings

    # A refused document fails before any query, so the real database is not touched.
    path = write(tmp_path, {"name": "x"})
    done = subprocess.run([sys.executable, "manage.py", "import_pipeline", path],
                          capture_output=True, text=True, check=False, cwd=settings.BASE_DIR)
    assert done.returncode == 1
    assert "error: stages: is required" in done.stderr


def test_import_of_a_missing_file_says_so():
    with pytest.raises(CommandError, match="cannot read /nonexistent.json: No such file"):
        run("import_pipeline", "/nonexistent.json")


def test_export_prints_json_by_default_and_yaml_on_request():
    pipeline = services.pipeline_save(document=definition()).pipeline
    out, _ = run("export_pipeline", "demo")
    assert json.loads(out) == services.pipeline_export(pipeline=pipeline)
    out, _ = run("export_pipeline", "demo", "--format", "yaml")
    assert yaml.safe_load(out) == services.pipeline_export(pipeline=pipeline)


def test_export_of_an_earlier_version(tmp_path):
    services.pipeline_save(document=definition())
    services.pipeline_save(document=definition(executionMode="PARALLEL"))
    out, _ = run("export_pipeline", "demo", "--version", "1")
    assert json.loads(out)["pipeline"]["version"] == 1
    assert json.loads(out)["pipeline"]["executionMode"] == "SUPERSEDED"
    with pytest.raises(CommandError, match='pipeline "demo" has no version 7'):
        run("export_pipeline", "demo", "--version", "7")


def test_export_of_an_unknown_pipeline_fails():
    with pytest.raises(CommandError, match='no pipeline is named "ghost"'):
        run("export_pipeline", "ghost")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_export_then_import_changes_nothing(tmp_path, fmt):
    services.pipeline_save(document=definition(roleArn="arn:x"))
    out, _ = run("export_pipeline", "demo", "--format", fmt)
    path = tmp_path / f"demo.{fmt}"
    path.write_text(out)
    assert run("import_pipeline", str(path))[0] == 'unchanged pipeline "demo" (version 1)\n'
