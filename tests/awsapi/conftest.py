"""Fixtures for driving ``/aws/`` through real boto3 against a live server."""

import json
import queue
import threading
import time
import traceback

import boto3
import pytest
from botocore.config import Config
from django.contrib.auth.models import Group, User
from django.db import DEFAULT_DB_ALIAS, connections

from approvals import tasks as approval_tasks
from awsapi.services import access_key_create
from executions import tasks
from pipelines import providers
from tests.factories import definition
from tests.roles import ensure_role_groups

ROLE_ARN = "arn:aws:iam::123456789012:role/conveyor"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix,
                                 tmp_path_factory):
    """On SQLite, a test database in a file when none is configured (see ``worker``).

    This takes effect when these tests are the first to need the database (e.g.
    ``pytest tests/awsapi``); in a run where an earlier directory already made an
    in-memory one, ``worker`` skips and names CONVEYOR_TEST_SQLITE.
    """
    settings_dict = connections.settings[DEFAULT_DB_ALIAS]
    test = settings_dict.setdefault("TEST", {})
    if settings_dict["ENGINE"].endswith("sqlite3") and not test.get("NAME"):
        test["NAME"] = str(tmp_path_factory.mktemp("awsapi-db") / "test.sqlite3")


@pytest.fixture
def runnable_providers():
    """Make sure Source/Git and Build/Shell can be validated.

    The runners of ``executions`` register these when that app is ready. Until
    they exist, a stand-in that accepts any configuration is registered for the
    test and removed after: the AWS endpoint is under test here, not the runners.
    """
    added = []
    for category, provider in (("Source", "Git"), ("Build", "Shell")):
        if providers.get(category, provider) is None:
            providers.register(category, provider, lambda action: [],
                               "stand-in registered by tests/awsapi")
            added.append((category, provider))
    yield
    for key in added:
        providers._registry.pop(key, None)


@pytest.fixture
def aws_definition(runnable_providers):
    """``aws_definition(name)``: a valid definition as a boto3 caller sends it.

    botocore checks the input against CodePipeline's model before sending, and
    the model requires ``roleArn``; Conveyor keeps it without using it.
    """

    def make(name: str = "demo", **fields) -> dict:
        return definition(name, roleArn=ROLE_ARN, **fields)

    return make


# The operations whose answers are checked member by member against botocore's
# model (``model_mismatches``) by every client ``aws`` makes. The definition
# operations are left out on purpose: a pipeline document keeps the fields
# Conveyor has no use for, as it was imported.
CHECKED_OPERATIONS = frozenset({
    "ListPipelines", "StartPipelineExecution", "StopPipelineExecution", "GetPipelineExecution",
    "ListPipelineExecutions", "GetPipelineState", "ListActionExecutions",
    "RetryStageExecution", "PutApprovalResult", "EnableStageTransition",
    "DisableStageTransition", "RollbackStage",
    # The job-worker protocol and custom action types (tests/jobs).
    "PollForJobs", "AcknowledgeJob", "GetJobDetails", "PutJobSuccessResult",
    "PutJobFailureResult", "PollForThirdPartyJobs", "AcknowledgeThirdPartyJob",
    "GetThirdPartyJobDetails", "PutThirdPartyJobSuccessResult",
    "PutThirdPartyJobFailureResult", "CreateCustomActionType", "GetActionType",
    "UpdateActionType", "DeleteCustomActionType", "ListActionTypes",
})


def model_mismatches(value, shape, path: str = "") -> list[str]:
    """Where an answer's JSON leaves botocore's output shape.

    botocore's parser drops members the model does not know and keeps a
    string outside its enum, so a client would never notice either; this
    notices: unknown members, wrong types, enum values the model does not list.
    """
    problems = []
    kind = shape.type_name
    if value is None:
        return [f"{path or '.'}: null (AWS leaves a member without a value out)"]
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not an object"]
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
            else:
                problems += model_mismatches(item, shape.members[key], f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, not a list"]
        for i, item in enumerate(value):
            problems += model_mismatches(item, shape.member, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not a map"]
        for key, item in value.items():
            problems += model_mismatches(item, shape.value, f"{path}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a string")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not an integer")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a boolean")
    elif kind == "timestamp" and (not isinstance(value, int | float)
                                  or isinstance(value, bool)):
        problems.append(f"{path}: {value!r} is not epoch seconds")
    return problems


@pytest.fixture
def aws(live_server, monkeypatch):
    """``aws(user)`` is a boto3 CodePipeline client signing with a new key of ``user``.

    ``aws(key_id=..., secret=...)`` signs with the given credentials instead.
    Retries are off so that a refused request is seen at once. botocore keeps its
    HTTP connection alive, and with it the server thread serving it: with
    CONN_MAX_AGE 0 that thread closes its database connection after each request
    instead of holding it past the test (PostgreSQL would then refuse to drop
    the test database).
    """
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    clients = []
    mismatches: list[str] = []

    def check_answer(operation_model, response_dict, **kwargs):
        if operation_model.name not in CHECKED_OPERATIONS or response_dict["status_code"] != 200:
            return
        body = json.loads(response_dict["body"] or b"{}")
        output = operation_model.output_shape
        if output is None:
            if body != {}:
                mismatches.append(f"{operation_model.name}: answers {body!r}, the model "
                                  "declares no output")
            return
        mismatches.extend(f"{operation_model.name}{problem}"
                          for problem in model_mismatches(body, output))

    def make(user=None, *, key_id: str | None = None, secret: str | None = None):
        if user is not None:
            key, secret = access_key_create(user=user)
            key_id = key.access_key_id
        client = boto3.session.Session().client(
            "codepipeline",
            endpoint_url=live_server.url + "/aws/",
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}),
        )
        client.meta.events.register("before-parse.codepipeline", check_answer)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    assert not mismatches, "answers that leave the model:\n" + "\n".join(mismatches)


# --- running executions behind the live server --------------------------------------


class Worker:
    """Runs the action executions the engine dispatches, in a thread of this process.

    It stands in for the django-q2 cluster, the edge these tests hold: the engine
    hands new action executions to ``executions.tasks.enqueue`` on commit (from
    the live server's thread, or from this worker's own continuations), and
    this thread runs each through ``executions.tasks.action_run``, the real task
    body (claim, runner, heartbeat, outputs, the engine's finish). A separate
    cluster process could not share the test database on SQLite (in memory).
    """

    def __init__(self):
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.crashed: list[str] = []
        self.thread = threading.Thread(target=self._loop, name="test-worker", daemon=True)

    def enqueue(self, pk: int) -> None:
        self.queue.put(pk)

    def _loop(self) -> None:
        while True:
            pk = self.queue.get()
            if pk is None:
                break
            try:
                tasks.action_run(pk)
            except Exception:  # the test fails on it, with the traceback
                self.crashed.append(traceback.format_exc())
            finally:
                connections.close_all()


@pytest.fixture
def worker(monkeypatch, settings):
    """A worker thread running dispatched actions; the approvals queue runs inline.

    Heartbeats are quick (0.2 s) so that an abandoned Simulate action, which
    sleeps until its heartbeat sees the abandonment, lets the worker go at once.

    On SQLite the test database must be a file (``CONVEYOR_TEST_SQLITE``): an
    in-memory one is a shared cache whose table locks fail a second writer at
    once ("database table is locked") instead of waiting, so a worker beside
    the live server cannot work on it, as no real deployment would.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "sqlite" and db.is_in_memory_db():
        pytest.skip("needs a file-based SQLite test database for the worker thread: "
                    "set CONVEYOR_TEST_SQLITE=/path/to/test.sqlite3 (or use PostgreSQL)")
    settings.CONVEYOR_HEARTBEAT_SECONDS = 0.2
    settings.CONVEYOR_RECORD_PROCESS_AFTER = 0.05
    settings.CONVEYOR_BASE_URL = "https://conveyor.example.com"
    w = Worker()
    monkeypatch.setattr(tasks, "enqueue", w.enqueue)
    monkeypatch.setattr(approval_tasks, "enqueue",
                        lambda name, *args: getattr(approval_tasks, name)(*args))
    w.thread.start()
    yield w
    w.queue.put(None)
    w.thread.join(timeout=60)
    assert not w.thread.is_alive(), "the worker thread did not finish its last action"
    assert not w.crashed, "\n".join(w.crashed)


def wait_for(check, *, timeout: float = 30.0, interval: float = 0.1, what: str = ""):
    """Call ``check()`` until it returns something truthy; return that (fail after timeout)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}: {last!r}")


@pytest.fixture
def reviewer(db):
    """May decide approvals (group "reviewers") and look at pipelines and executions."""
    ensure_role_groups()
    user = User.objects.create_user("rita", "rita@example.com", "pw-rita")
    user.groups.add(Group.objects.get(name="reviewers"))
    return user
