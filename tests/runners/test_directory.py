"""The Directory deploy runner and release rollback, on real directories."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from executions.models import ActionExecution
from pipelines.services import pipeline_save
from pipelines.validation import validate_document
from runners import ActionFailed
from runners.directory import (
    DirectoryDeployRunner,
    ReleaseError,
    current_release,
    release_manifest,
    release_rollback,
    releases,
)
from tests.factories import action, definition
from tests.runners.conftest import make_ctx

runner = DirectoryDeployRunner()


def deploy_action(target, keep=None) -> dict:
    config = {"TargetDirectory": str(target)}
    if keep is not None:
        config["KeepReleases"] = str(keep)
    return action("Release", "Deploy", "Directory", configuration=config,
                  inputArtifacts=[{"name": "Pkg"}])


def artifact(tmp_path, version: str, name: str = "pkg"):
    folder = tmp_path / f"{name}-{version}"
    (folder / "bin").mkdir(parents=True)
    (folder / "VERSION").write_text(version)
    (folder / "bin" / "start").write_text("#!/bin/sh\necho started\n")
    (folder / "bin" / "start").chmod(0o755)
    return folder


def deploy(tmp_path, target, version, keep=None, variables=None):
    ctx = make_ctx(tmp_path, deploy_action(target, keep), inputs={"Pkg": artifact(
        tmp_path, version)}, variables=variables or {})
    return ctx, runner.run(ctx)


def test_a_deploy_makes_a_release_and_points_current_at_it(tmp_path):
    target = tmp_path / "site"
    ctx, result = deploy(tmp_path, target, "1.0",
                         variables={"SourceVariables.CommitId": "abc123", "x.y": "z"})
    name = result.output_variables["ReleaseName"]
    assert (target / "current").is_symlink()
    assert os.readlink(target / "current") == f"releases/{name}"
    assert (target / "current" / "VERSION").read_text() == "1.0"
    assert os.access(target / "current" / "bin" / "start", os.X_OK)
    assert result.output_variables["PreviousRelease"] == ""
    manifest = release_manifest(target, name)
    assert manifest["revisions"] == {"SourceVariables.CommitId": "abc123"}
    assert manifest["pipelineExecutionId"] == ctx.pipeline_execution_id
    assert result.summary == f"Released 2 file(s) into {target} as {name}"


def test_a_second_deploy_swaps_current_and_keeps_the_first_for_rollback(tmp_path):
    target = tmp_path / "site"
    _, first = deploy(tmp_path, target, "1.0")
    _, second = deploy(tmp_path, target, "2.0")
    assert (target / "current" / "VERSION").read_text() == "2.0"
    assert second.output_variables["PreviousRelease"] == first.output_variables["ReleaseName"]
    assert releases(target) == [first.output_variables["ReleaseName"],
                                second.output_variables["ReleaseName"]]


def test_only_the_newest_releases_are_kept(tmp_path):
    target = tmp_path / "site"
    names = [deploy(tmp_path, target, f"{i}.0", keep=2)[1].output_variables["ReleaseName"]
             for i in range(4)]
    assert releases(target) == names[-2:]
    assert not (target / "releases" / f"{names[0]}.release.json").exists()
    assert current_release(target) == names[-1]


def test_keep_releases_defaults_to_five(tmp_path):
    target = tmp_path / "site"
    for i in range(7):
        deploy(tmp_path, target, f"{i}.0")
    assert len(releases(target)) == 5


def test_a_failed_deploy_leaves_current_untouched_and_no_half_release(tmp_path):
    target = tmp_path / "site"
    _, first = deploy(tmp_path, target, "1.0")
    empty = tmp_path / "empty"
    empty.mkdir()
    ctx = make_ctx(tmp_path, deploy_action(target), inputs={"Pkg": empty})
    with pytest.raises(ActionFailed, match='Input artifact "Pkg" is empty: nothing to deploy'):
        runner.run(ctx)
    assert current_release(target) == first.output_variables["ReleaseName"]
    assert releases(target) == [first.output_variables["ReleaseName"]]


def test_a_deploy_stopped_while_copying_leaves_current_untouched(tmp_path, monkeypatch):
    target = tmp_path / "site"
    _, first = deploy(tmp_path, target, "1.0")
    big = artifact(tmp_path, "2.0")
    for i in range(50):
        (big / f"file{i}.txt").write_text("x")
    ctx = make_ctx(tmp_path, deploy_action(target), inputs={"Pkg": big})
    copied = []
    real_copy2 = shutil.copy2

    def copy_then_stop(src, dst, **kwargs):
        copied.append(src)
        if len(copied) == 10:
            ctx.request_stop("abandoned")
        return real_copy2(src, dst, **kwargs)

    # The stop arrives from the worker's heartbeat thread in real life; here it
    # arrives after the tenth file, which is what the copy loop must notice.
    monkeypatch.setattr(shutil, "copy2", copy_then_stop)
    with pytest.raises(ActionFailed, match="Stopped: abandoned"):
        runner.run(ctx)
    assert 10 <= len(copied) < 52
    assert current_release(target) == first.output_variables["ReleaseName"]
    assert sorted(p.name for p in (target / "releases").iterdir()) == [
        first.output_variables["ReleaseName"],
        first.output_variables["ReleaseName"] + ".release.json"]


def test_a_real_directory_named_current_is_not_replaced(tmp_path):
    target = tmp_path / "site"
    (target / "current").mkdir(parents=True)
    (target / "current" / "index.html").write_text("hand-made")
    with pytest.raises(ActionFailed, match="is a real directory or file, not a link"):
        deploy(tmp_path, target, "1.0")
    assert (target / "current" / "index.html").read_text() == "hand-made"
    assert releases(target) == []


def test_readers_of_current_never_see_a_missing_or_half_release(tmp_path):
    target = tmp_path / "site"
    deploy(tmp_path, target, "0")
    seen, errors = set(), []
    done = threading.Event()

    def read():
        while not done.is_set():
            try:
                seen.add((target / "current" / "VERSION").read_text())
            except OSError as exc:  # a moment without current would land here
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 15):
            deploy(tmp_path, target, str(i), keep=3)
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert seen <= {str(i) for i in range(15)} and len(seen) > 1


def test_rollback_points_current_at_the_previous_release(tmp_path):
    target = tmp_path / "site"
    _, first = deploy(tmp_path, target, "1.0")
    _, second = deploy(tmp_path, target, "2.0")
    assert release_rollback(target_directory=target) == first.output_variables["ReleaseName"]
    assert (target / "current" / "VERSION").read_text() == "1.0"
    with pytest.raises(ReleaseError, match="oldest release kept"):
        release_rollback(target_directory=target)
    named = second.output_variables["ReleaseName"]
    assert release_rollback(target_directory=target, release=named) == named
    assert (target / "current" / "VERSION").read_text() == "2.0"


def test_rollback_to_an_unknown_release_or_an_undeployed_target_is_refused(tmp_path):
    with pytest.raises(ReleaseError, match="does not exist: nothing was deployed there"):
        release_rollback(target_directory=tmp_path / "never")
    target = tmp_path / "site"
    deploy(tmp_path, target, "1.0")
    with pytest.raises(ReleaseError, match='There is no release "nope"'):
        release_rollback(target_directory=target, release="nope")


def test_the_target_must_be_absolute_and_keep_releases_a_whole_number():
    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Pkg"}])]),
        ("Deploy", [action("Release", "Deploy", "Directory", inputArtifacts=[{"name": "Pkg"}],
                           configuration={"TargetDirectory": "relative/site",
                                          "KeepReleases": "0"})]),
    ])
    found = [str(p) for p in validate_document(doc)]
    assert ('stages[1].actions[0].configuration.TargetDirectory: "relative/site" is not an '
            "absolute path") in found
    assert ('stages[1].actions[0].configuration.KeepReleases: "0" is not a whole number of '
            "releases (1 or more)") in found


def test_a_pipeline_deploys_its_source_artifact_through_the_engine(driver, tmp_path):
    target = tmp_path / "site"
    doc = definition("dir-e2e", stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Pkg"}],
                           configuration={"OutputContent": "hello"})]),
        ("Deploy", [deploy_action(target)]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert (target / "current" / "Pkg.txt").read_text() == "hello"
    release = ActionExecution.objects.get(execution=execution, action_name="Release")
    manifest = json.loads((target / "releases" /
                           f"{release.output_variables['ReleaseName']}.release.json")
                          .read_text())
    assert manifest["pipelineExecutionId"] == str(execution.execution_id)
