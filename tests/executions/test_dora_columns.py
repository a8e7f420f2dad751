"""The DORA copies on PipelineExecution (``committed_at``, ``entered_last_stage``) agree
with what they copy, for executions made through the real paths (a signed push webhook,
a start, a retry, a retry of the source stage after a new commit, a rollback, a stop, a
supersession) with a real git repository, and the migration's backfill fills rows
written before the columns existed; the figures read from them are those of the
definitions, computed row by row."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from executions import dora, dora_columns, services
from executions.models import PipelineExecution, SourceRevision, StageExecution
from tests.executions.conftest import sim
from tests.runners.conftest import GitRepo
from tests.runners.test_triggers import github_push, post_hook

SECRET_HOOK = "webhook-s3cret"


def computed_and_stored() -> list[tuple]:
    """(number, stored committed_at, computed, stored entered_last_stage, computed)."""
    values = dora_columns.computed(SourceRevision, StageExecution)
    return list(PipelineExecution.objects.order_by("pk")
                .annotate(c_committed=values["committed_at"],
                          c_entered=values["entered_last_stage"])
                .values_list("number", "committed_at", "c_committed", "entered_last_stage",
                             "c_entered"))


def assert_stored_as_computed() -> dict[int, tuple]:
    rows = computed_and_stored()
    assert rows
    for number, stored, computed, entered, computed_entered in rows:
        assert (number, stored, entered) == (number, computed, bool(computed_entered))
    return {number: (stored, entered) for number, stored, _, entered, _ in rows}


def commit(repo: GitRepo, message: str, date: str) -> tuple[str, datetime]:
    """A commit of a change to app.txt with this committer date; (sha, the date as git
    reports it)."""
    (repo.path / "app.txt").write_text(message)
    repo.git("add", "app.txt")
    repo.git("commit", "-q", "--allow-empty", "-m", message, env={"GIT_COMMITTER_DATE": date})
    sha = repo.head()
    return sha, datetime.fromisoformat(repo.git("log", "-1", "--format=%cI", sha))


@pytest.fixture
def shop(tmp_path):
    from pipelines.models import Pipeline
    from pipelines.services import pipeline_save
    from tests.factories import action, definition

    repo = GitRepo(tmp_path / "repo")
    doc = definition("shop", stages=[
        ("Source", [action("Checkout", "Source", "Git",
                           configuration={"RepositoryUrl": str(repo.path),
                                          "BranchName": "main"},
                           outputArtifacts=[{"name": "Src"}]),
                    sim("Gate", "Source", Outcome="#{variables.gate}", runOrder=2,
                        outputArtifacts=[{"name": "Gate"}])]),
        ("Build", [sim("Compile", Outcome="#{variables.build}",
                       inputArtifacts=[{"name": "Src"}])]),
        ("Deploy", [sim("Release", "Deploy", Outcome="#{variables.deploy}")]),
    ])
    doc["variables"] = [{"name": n, "defaultValue": "Succeeded"}
                        for n in ("gate", "build", "deploy")]
    pipeline = pipeline_save(document=doc).pipeline
    Pipeline.objects.filter(pk=pipeline.pk).update(webhook_secret=SECRET_HOOK)
    pipeline.refresh_from_db()
    return pipeline, repo


def ended(ex: PipelineExecution) -> PipelineExecution:
    ex.refresh_from_db()
    return ex


def test_the_stored_copies_agree_with_the_rows_through_every_path(driver, shop):
    pipeline, repo = shop
    first, first_at = commit(repo, "First", "2026-11-02T10:00:00+00:00")

    # 1. A signed push webhook starts #1 on that commit: a deployment.
    answer = post_hook(lambda user: APIClient(), driver, "shop",
                       github_push(str(repo.path), first))
    assert answer.status_code in (200, 202), answer.content
    driver.run()
    hooked = ended(PipelineExecution.objects.get(number=1))
    assert (hooked.status, hooked.committed_at, hooked.entered_last_stage) == (
        "Succeeded", first_at, True)

    # 2. A start that fails in Deploy (a change failure), 3. one failing in Build, then
    # retried once fixed: it enters the last stage only with the retry.
    failed = driver.start(pipeline, variables={"deploy": "Failed"})
    driver.run()
    assert (ended(failed).status, failed.entered_last_stage) == ("Failed", True)
    retried = driver.start(pipeline, variables={"build": "Failed"})
    driver.run()
    assert (ended(retried).status, retried.entered_last_stage) == ("Failed", False)
    PipelineExecution.objects.filter(pk=retried.pk).update(
        variables={**retried.variables, "build": "Succeeded"})
    driver.call(services.stage_retry, execution=retried, stage_name="Build", mode="ALL_ACTIONS")
    driver.run()
    assert (ended(retried).status, retried.entered_last_stage) == ("Succeeded", True)

    # 4. The source stage fails (its gate), a newer commit lands, the stage is retried
    # with all its actions: the source revision is rewritten, and its commit time.
    resourced = driver.start(pipeline, variables={"gate": "Failed"})
    driver.run()
    assert (ended(resourced).status, resourced.committed_at) == ("Failed", first_at)
    _, second_at = commit(repo, "Second", "2026-11-01T08:00:00+00:00")
    PipelineExecution.objects.filter(pk=resourced.pk).update(
        variables={**resourced.variables, "gate": "Succeeded"})
    driver.call(services.stage_retry, execution=resourced, stage_name="Source",
                mode="ALL_ACTIONS")
    driver.run_action("Source", "Checkout", resourced)   # the gate runs after it
    assert ended(resourced).committed_at == second_at
    driver.run()
    assert (ended(resourced).status, resourced.committed_at) == ("Succeeded", second_at)

    # 5. A rollback of Deploy to #1 shows #1's revisions, and its commit time.
    rollback = driver.call(services.stage_rollback, pipeline=pipeline, stage_name="Deploy",
                           target_execution=hooked)
    driver.run()
    assert (ended(rollback).status, rollback.committed_at,
            rollback.entered_last_stage) == ("Succeeded", first_at, True)

    # 6. Stopped in Build; 7. superseded while waiting at Build's gate by a newer one.
    stopped = driver.start(pipeline)
    driver.run_action("Source", "Checkout", stopped)
    driver.run_action("Source", "Gate", stopped)
    driver.call(services.execution_stop, execution=stopped, abandon=True)
    holder = driver.start(pipeline)
    driver.run_action("Source", "Checkout", holder)
    driver.run_action("Source", "Gate", holder)
    waiting = driver.start(pipeline)
    driver.run_action("Source", "Checkout", waiting)
    driver.run_action("Source", "Gate", waiting)
    newer = driver.start(pipeline)
    driver.run_action("Source", "Checkout", newer)
    driver.run_action("Source", "Gate", newer)
    driver.run()
    assert ended(stopped).status == "Stopped"
    assert ended(waiting).status == "Superseded"
    assert (stopped.committed_at, stopped.entered_last_stage) == (second_at, False)
    assert (waiting.committed_at, waiting.entered_last_stage) == (second_at, False)

    stored = assert_stored_as_computed()
    assert len(stored) == 9
    assert {n for n, (_, entered) in stored.items() if entered} == {
        hooked.number, failed.number, retried.number, resourced.number, rollback.number,
        holder.number, newer.number}


def test_the_backfill_fills_rows_written_before_the_columns_existed(driver, shop):
    pipeline, repo = shop
    commit(repo, "First", "2026-11-02T10:00:00+00:00")
    for variables in ({}, {"deploy": "Failed"}, {"build": "Failed"}, {"gate": "Failed"}):
        driver.start(pipeline, variables=variables)
        driver.run()
    expected = assert_stored_as_computed()
    assert [entered for _, entered in expected.values()] == [True, True, False, False]
    assert all(committed is not None for committed, _ in expected.values())
    # As migration 0012 finds them: the columns added, with nothing in them.
    PipelineExecution.objects.update(committed_at=None, entered_last_stage=False)
    assert set(PipelineExecution.objects.values_list("committed_at", "entered_last_stage")
               ) == {(None, False)}

    # Three ids a batch: the four rows take two batches.
    assert dora_columns.backfill(PipelineExecution, SourceRevision, StageExecution,
                                 batch=3) == 4
    assert assert_stored_as_computed() == expected


def brute_force(pipeline_ids, since, until) -> dict:
    """The four figures computed in Python from every row, by the definitions."""
    rows = sorted(PipelineExecution.objects.filter(
        pipeline_id__in=pipeline_ids, ended_at__gte=since, ended_at__lt=until),
        key=lambda ex: (ex.ended_at, ex.pk))
    last_index = {ex.pk: len(ex.document["stages"]) - 1 for ex in rows}
    entered = {ex.pk: StageExecution.objects.filter(
        execution=ex, stage_index__gte=last_index[ex.pk]).exists() for ex in rows}
    deployments = [ex for ex in rows if ex.execution_type == "STANDARD"
                   and ex.status == "Succeeded"]
    failures = [ex for ex in rows if ex.execution_type == "STANDARD" and ex.status == "Failed"
                and entered[ex.pk]]
    first_commit = {ex.pk: min((r.committed_at for r in ex.source_revisions.all()
                                if r.committed_at), default=None) for ex in deployments}
    leads = sorted((ex.ended_at - first_commit[ex.pk]).total_seconds()
                   for ex in deployments if first_commit[ex.pk])
    restores, still_failing = [], 0
    for pipeline_id in pipeline_ids:
        counted = [ex for ex in rows if ex.pipeline_id == pipeline_id
                   and (ex.status == "Succeeded" or ex in failures)]
        for i, ex in enumerate(counted):
            if ex in failures and (i == 0 or counted[i - 1] not in failures):
                after = [later for later in counted[i + 1:] if later.status == "Succeeded"]
                if after:
                    restores.append((after[0].ended_at - ex.ended_at).total_seconds())
                else:
                    still_failing += 1
    return {"deployments": len(deployments), "failures": len(failures),
            "lead_time": statistics.median(leads) if leads else None,
            "known": len(leads), "restore": statistics.median(restores) if restores else None,
            "restored": len(restores), "open": still_failing}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_figures_from_the_stored_copies_are_those_of_the_definitions(driver, seed):
    """A random history of two pipelines, with executions ending at the same second
    (ordered by id), rollbacks, failures before and in the last stage, deployments with
    and without commit times: the figures are those computed row by row in Python."""
    from tests.executions.conftest import simple_pipeline
    from tests.executions.test_dora import History

    rng = random.Random(seed)
    until = datetime(2026, 12, 1, tzinfo=UTC)
    since = until - timedelta(weeks=12)
    histories = [History(simple_pipeline(name)) for name in ("api", "web")]
    at = since - timedelta(days=3)
    for _ in range(160):
        if rng.random() > 0.2:             # else: the same second as the previous one
            at += timedelta(seconds=rng.randrange(1, 20_000))
        status = rng.choice(["Succeeded"] * 5 + ["Failed"] * 3 + ["Superseded", "Stopped"])
        rollback = status == "Succeeded" and rng.random() < 0.1
        rng.choice(histories).add(
            status, at, reached=rng.choice([1, 2, 2]) if status != "Succeeded" else 2,
            committed_at=at - timedelta(seconds=rng.randrange(60, 90_000))
            if rng.random() < 0.8 else None,
            execution_type="ROLLBACK" if rollback else "STANDARD")
    ids = [h.pipeline.pk for h in histories]
    expected = brute_force(ids, since, until)
    figures = dora.dora(ids, since=since, until=until)
    assert expected["failures"] and expected["restored"]
    assert {"deployments": figures.deployments, "failures": figures.failures,
            "lead_time": figures.lead_time,
            "known": figures.deployments - figures.lead_time_unknown,
            "restore": figures.restore, "restored": figures.restored,
            "open": figures.open_incidents} == expected
