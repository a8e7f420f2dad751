"""The audit trail: every kind of act leaves one entry naming who, what, where from
and why, whatever surface it came through; no surface can change or delete one."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from approvals import services as approval_services
from awsapi.services import access_key_deactivate
from executions import services
from executions.models import PipelineExecution
from observability.audit import audit_record, audit_surface
from observability.models import AuditEntry
from pipelines import services as pipeline_services
from tests.approvals.conftest import release_pipeline
from tests.executions.conftest import sim, simple_pipeline
from tests.factories import definition


def trail() -> list[tuple]:
    """The entries, oldest first, but for the pipelines the tests' fixtures made
    (created by code with no surface: "system")."""
    return [(e.actor, e.action, e.surface, e.pipeline, e.execution_number, e.stage, e.reason)
            for e in AuditEntry.objects.exclude(surface="system").order_by("id")]


def test_execution_acts_are_recorded_with_the_surface_they_came_through(
        driver, api, client, operator):
    flaky = simple_pipeline("flaky", stages=[("Build", [sim("Compile", Outcome="Failed")]),
                                             ("Deploy", [sim("Release")])])
    started = driver.call(api(operator).post, "/api/pipelines/flaky/executions/", {},
                          format="json")
    assert started.status_code == 201
    driver.run()
    ex = PipelineExecution.objects.get(pipeline=flaky)
    assert ex.status == "Failed"
    client.force_login(operator)
    driver.call(client.post, f"/pipelines/flaky/executions/{ex.number}/stages/Build/retry/",
                {"mode": "ALL_ACTIONS"})
    driver.call(client.post, f"/pipelines/flaky/executions/{ex.number}/stop/",
                {"mode": "abandon", "reason": "wrong branch"})
    answer = driver.call(api(operator).post, "/api/pipelines/flaky/stages/Deploy/transition/",
                         {"enabled": False, "reason": "freeze for the audit"}, format="json")
    assert answer.status_code in (200, 204), answer.content
    # Disabling a disabled transition changes nothing, and records nothing.
    driver.call(api(operator).post, "/api/pipelines/flaky/stages/Deploy/transition/",
                {"enabled": False, "reason": "again"}, format="json")
    driver.call(api(operator).post, "/api/pipelines/flaky/stages/Deploy/transition/",
                {"enabled": True}, format="json")

    assert trail() == [
        ("oscar", "execution.start", "rest", "flaky", 1, "", ""),
        ("oscar", "stage.retry", "dashboard", "flaky", 1, "Build", ""),
        ("oscar", "execution.stop", "dashboard", "flaky", 1, "", "wrong branch"),
        ("oscar", "transition.disable", "rest", "flaky", None, "Deploy", "freeze for the audit"),
        ("oscar", "transition.enable", "rest", "flaky", None, "Deploy", ""),
    ]
    assert AuditEntry.objects.get(action="stage.retry").detail == {
        "retryMode": "ALL_ACTIONS", "attempt": 2}
    assert AuditEntry.objects.get(action="execution.stop").detail == {"abandon": True}


def test_a_push_started_execution_is_no_ones_act_and_a_refused_act_records_nothing(driver):
    pipeline = simple_pipeline("quiet")
    driver.call(services.execution_start, pipeline=pipeline, trigger_type="Webhook")
    driver.run()
    ex = PipelineExecution.objects.get(pipeline=pipeline)
    with pytest.raises(services.ExecutionError):
        services.stage_retry(execution=ex, stage_name="Build", mode="ALL_ACTIONS")
    assert trail() == []


def test_a_rollback_names_its_target(driver, owner):
    pipeline = simple_pipeline("rolled")
    first = driver.start(pipeline)
    driver.run()
    driver.start(pipeline)
    driver.run()
    with audit_surface("aws"):
        rollback = driver.call(services.stage_rollback, pipeline=pipeline, stage_name="Deploy",
                               target_execution=first, user=owner)
    [entry] = AuditEntry.objects.filter(action="stage.rollback")
    assert (entry.actor, entry.action, entry.surface, entry.execution_number, entry.stage) == (
        "olivia", "stage.rollback", "aws", rollback.number, "Deploy")
    assert entry.detail["targetNumber"] == first.number


def test_approvals_and_rejections_are_recorded_with_the_reviewers_summary(
        release, alice):
    shop = release_pipeline("shop")
    request = release.to_approval(shop, commit="aaa")
    with audit_surface("dashboard"):
        release.call(approval_services.approval_decide, request=request, user=alice,
                     status="Rejected", summary="breaks checkout", surface="dashboard")
    [entry] = AuditEntry.objects.filter(action__startswith="approval.")
    assert (entry.actor, entry.action, entry.surface, entry.pipeline, entry.stage,
            entry.reason) == ("alice", "approval.reject", "dashboard", "shop", "Production",
                              "breaks checkout")


def test_definition_secret_and_key_changes_are_recorded_without_the_secrets(
        api, owner, client, tmp_path):
    doc = definition("defined")
    assert api(owner).post("/api/pipelines/", {"pipeline": doc}, format="json").status_code == 201
    doc["stages"][1]["actions"][0]["commands"] = ["make"]
    assert api(owner).put("/api/pipelines/defined/", {"pipeline": doc},
                          format="json").status_code == 200
    secret = "a-webhook-secret-of-some-length"
    assert api(owner).put("/api/pipelines/defined/webhook/", {"secret": secret},
                          format="json").status_code == 200
    path = tmp_path / "imported.json"
    path.write_text(json.dumps(definition("imported")))
    call_command("import_pipeline", str(path))
    call_command("create_access_key", "olivia", stdout=io.StringIO())
    with audit_surface("admin"):
        access_key_deactivate(access_key=owner.access_keys.get(), by=owner)
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert client.post("/admin/pipelines/pipeline/"
                       f"{pipeline_services.Pipeline.objects.get(name='defined').pk}/delete/",
                       {"post": "yes"}).status_code == 302

    assert [(a, act, s, p) for a, act, s, p, *_ in trail()] == [
        ("olivia", "pipeline.create", "rest", "defined"),
        ("olivia", "pipeline.update", "rest", "defined"),
        ("olivia", "secret.change", "rest", "defined"),
        ("", "pipeline.create", "command", "imported"),
        ("", "key.create", "command", ""),
        ("olivia", "key.deactivate", "admin", ""),
        ("root", "pipeline.delete", "admin", "defined"),
    ]
    dumped = json.dumps([e.detail for e in AuditEntry.objects.all()])
    assert secret not in dumped
    assert AuditEntry.objects.get(action="pipeline.update").detail == {"version": 2}


@pytest.mark.django_db
def test_no_surface_can_change_or_delete_an_entry(client, api):
    entry = audit_record(action="condition.override", pipeline="p", reason="window closed")
    root = User.objects.create_superuser("root", password="pw")
    # The model and its querysets refuse.
    entry.reason = "nothing happened"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="x")
    with pytest.raises(TypeError):
        AuditEntry.objects.all().delete()
    # The admin shows it and offers no way to change or delete it, even to a superuser.
    client.force_login(root)
    change = f"/admin/observability/auditentry/{entry.pk}/change/"
    page = client.get(change)
    assert page.status_code == 200 and b"window closed" in page.content
    assert client.post(change, {"reason": "x"}).status_code == 403
    assert client.post(f"/admin/observability/auditentry/{entry.pk}/delete/",
                       {"post": "yes"}).status_code == 403
    assert client.get("/admin/observability/auditentry/add/").status_code == 403
    # The API only reads.
    for method in ("post", "put", "patch", "delete"):
        assert getattr(api(root), method)("/api/audit/", {}, format="json").status_code == 405
    # On PostgreSQL the database itself refuses.
    if connection.vendor == "postgresql":
        for sql in ("UPDATE observability_auditentry SET reason = 'x'",
                    "DELETE FROM observability_auditentry"):
            with (pytest.raises(DatabaseError, match="append-only"), transaction.atomic(),
                  connection.cursor() as cursor):
                cursor.execute(sql)
    assert AuditEntry.objects.get().reason == "window closed"


@pytest.mark.django_db
def test_the_api_filters_by_pipeline_actor_and_act_and_exports_json_lines(api, owner, viewer):
    from tests.executions.conftest import simple_pipeline

    simple_pipeline("a"), simple_pipeline("b")   # the owner reads the entries of its pipelines
    bob = User.objects.create_user("bob")
    audit_record(action="execution.stop", user=owner, pipeline="a", reason="one")
    audit_record(action="execution.stop", user=bob, pipeline="b", reason="two")
    audit_record(action="stage.retry", user=owner, pipeline="a")

    def reasons(query):
        answer = api(owner).get("/api/audit/" + query)
        assert answer.status_code == 200, answer.content
        return [r["action"] + ":" + r["reason"] for r in answer.json()["results"]]

    audit_record(action="execution.stop", user=bob, pipeline="gone", reason="not owned")
    # Newest first; "gone" is no pipeline the owner owns: not listed.
    assert reasons("") == ["stage.retry:", "execution.stop:two", "execution.stop:one",
                           "pipeline.create:", "pipeline.create:"]
    assert reasons("?pipeline=a&action=execution.stop") == ["execution.stop:one"]
    assert reasons("?actor=bob") == ["execution.stop:two"]
    wrong = api(owner).get("/api/audit/?action=execution.explode")
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["path"] == "action"
    export = api(owner).get("/api/audit/export/?pipeline=a")
    lines = [json.loads(x) for x in b"".join(export.streaming_content).decode().splitlines()]
    assert [(x["actor"], x["action"]) for x in lines] == [
        ("olivia", "stage.retry"), ("olivia", "execution.stop"), (None, "pipeline.create")]
    # Viewers may not read it.
    assert api(viewer).get("/api/audit/").status_code == 403


def test_the_pipeline_page_shows_its_trail_to_owners_only(driver, client, owner, viewer):
    simple_pipeline("paged")
    audit_record(action="transition.disable", user=owner, pipeline="paged", stage="Deploy",
                 reason="release freeze")
    audit_record(action="transition.disable", user=owner, pipeline="other", reason="elsewhere")
    client.force_login(owner)
    page = client.get("/pipelines/paged/audit/")
    assert page.status_code == 200
    assert b"release freeze" in page.content and b"elsewhere" not in page.content
    assert b"Audit trail" in client.get("/pipelines/paged/").content
    client.force_login(viewer)
    assert client.get("/pipelines/paged/audit/").status_code == 403
    assert b"Audit trail" not in client.get("/pipelines/paged/").content
    assert client.get("/pipelines/nothing-here/audit/").status_code == 404
    granted = User.objects.create_user("auditor")
    granted.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    client.force_login(granted)
    assert client.get("/pipelines/paged/audit/?export=jsonl").status_code == 200
