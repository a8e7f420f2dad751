"""The Manual provider: registered at start, its configuration checked with exact messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

import runners
from approvals.configuration import ConfigurationError, parse, parse_reviewers
from approvals.runner import ManualApprovalRunner
from pipelines import providers
from pipelines.validation import validate_document
from tests.approvals.conftest import manual
from tests.executions.conftest import sim
from tests.factories import definition

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codepipeline"


def problems(**fields) -> list[tuple[str, str]]:
    configuration = fields.pop("configuration", {})
    return ManualApprovalRunner().check({"name": "Approve", "configuration": configuration,
                                         **fields})


def test_the_manual_provider_is_registered_for_the_approval_category():
    assert isinstance(runners.get("Approval", "Manual"), ManualApprovalRunner)
    assert "Manual" in providers.providers_for("Approval")
    runner = runners.get("Approval", "Manual")
    assert runner.default_timeout_minutes == 7 * 24 * 60
    assert runner.timeout_summary == "approval expired"
    assert runner.runs_processes is False


def test_a_definition_with_an_aws_or_custom_manual_approval_validates():
    for owner in ("AWS", "Custom"):
        doc = definition("shop", stages=[
            ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
            ("Production", [manual(owner=owner, CustomData="Ship it?",
                                   Reviewers="alice,group:release-managers",
                                   RequiredApprovals="1", AllowSelfApproval="false",
                                   NotificationWebhook="https://chat.example.com/hook",
                                   ExternalEntityLink="https://ci.example.com",
                                   SupersedePendingApproval="true")]),
        ])
        assert [p for p in validate_document(doc) if p.severity == "error"] == []


@pytest.mark.skipif(not FIXTURES.exists(), reason="the CodePipeline fixtures are absent")
def test_the_manual_approval_of_an_aws_export_is_runnable_here():
    doc = json.loads((FIXTURES / "moto-create-pipeline-response-s3-source-manual-approval.json")
                     .read_text())
    assert doc["stages"][1]["actions"][0]["actionTypeId"]["provider"] == "Manual"
    found = [(p.path, p.severity) for p in validate_document(doc)]
    # Only the S3 source is AWS-only; the AWS-owned Manual approval runs here.
    assert found == [("stages[0].actions[0].actionTypeId.provider", "warning")]


def test_every_bad_value_is_reported_at_its_key():
    found = problems(configuration={
        "Reviewers": "alice, bad name!",
        "RequiredApprovals": "0",
        "AllowSelfApproval": "yes",
        "SupersedePendingApproval": "maybe",
        "NotificationWebhook": "ftp://chat.example.com",
        "ExternalEntityLink": "not a url",
        "CustomData": "x" * 513,
        "Colour": "blue",
    })
    assert dict(found) == {
        "configuration.Reviewers": '"bad name!" is neither a user name nor group:NAME',
        "configuration.RequiredApprovals": "RequiredApprovals must be at least 1, not 0",
        "configuration.AllowSelfApproval": 'AllowSelfApproval must be "true" or "false", '
                                           'not "yes"',
        "configuration.SupersedePendingApproval": 'SupersedePendingApproval must be "true" or '
                                                  '"false", not "maybe"',
        "configuration.NotificationWebhook": 'NotificationWebhook must be an http(s) URL, not '
                                             '"ftp://chat.example.com"',
        "configuration.ExternalEntityLink": 'ExternalEntityLink must be an http(s) URL, not '
                                            '"not a url"',
        "configuration.CustomData": "CustomData must be at most 512 characters, not 513",
        "configuration.Colour": '"Colour" is not a configuration key of a Manual approval: use '
                                "CustomData, ExternalEntityLink, Reviewers, RequiredApprovals, "
                                "AllowSelfApproval, NotificationWebhook, "
                                "SupersedePendingApproval, NotificationArn",
    }


def test_required_approvals_must_be_a_whole_number_and_reachable():
    assert problems(configuration={"RequiredApprovals": "two"}) == [
        ("configuration.RequiredApprovals", 'RequiredApprovals must be a whole number, not "two"')]
    assert problems(configuration={"Reviewers": "alice", "RequiredApprovals": "2"}) == [
        ("configuration.RequiredApprovals",
         "RequiredApprovals is 2 but Reviewers names only 1 reviewer")]
    # A group may hold any number of people.
    assert problems(configuration={"Reviewers": "alice,group:ops",
                                   "RequiredApprovals": "5"}) == []


def test_an_approval_timeout_is_between_5_minutes_and_60_days():
    assert problems(timeoutInMinutes=4) == [
        ("timeoutInMinutes", "an approval's timeout must be between 5 and 86400 minutes, not 4")]
    assert problems(timeoutInMinutes=5) == problems(timeoutInMinutes=86400) == []
    doc = definition("shop", stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Production", [manual(timeoutInMinutes=86401)]),
    ])
    assert [(p.path, p.message) for p in validate_document(doc)] == [
        ("stages[1].actions[0].timeoutInMinutes",
         "must be between 1 and 86400 minutes, not 86401")]


def test_values_with_variable_references_are_checked_when_the_action_starts():
    assert problems(configuration={"RequiredApprovals": "#{variables.n}",
                                   "NotificationWebhook": "#{variables.hook}"}) == []


def test_parsing_gives_the_defaults():
    parsed = parse({})
    assert parsed.required_approvals == 1
    assert parsed.allow_self_approval is False
    assert parsed.supersede_pending_approval is True
    assert parsed.reviewers.anyone
    assert parse_reviewers(" bob , group:release-managers ,alice").spec() == (
        "alice,bob,group:release-managers")
    with pytest.raises(ConfigurationError):
        parse({"Reviewers": "group:"})


@pytest.mark.django_db
def test_the_reviewers_group_may_decide_approvals_and_see_what_they_approve():
    perms = set(Group.objects.get(name="reviewers").permissions.values_list(
        "content_type__app_label", "codename"))
    assert ("approvals", "decide_approvalrequest") in perms
    assert {("pipelines", "view_pipeline"), ("executions", "view_pipelineexecution"),
            ("approvals", "view_approvalrequest")} <= perms
    for role in ("viewers", "operators", "owners"):
        codenames = set(Group.objects.get(name=role).permissions.values_list(
            "codename", flat=True))
        assert "view_approvalrequest" in codenames
        assert "decide_approvalrequest" not in codenames
