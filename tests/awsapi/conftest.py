"""Fixtures for driving ``/aws/`` through real boto3 against a live server."""

import boto3
import pytest
from botocore.config import Config
from django.db import DEFAULT_DB_ALIAS, connections

from awsapi.services import access_key_create
from pipelines import providers
from tests.factories import definition

ROLE_ARN = "arn:aws:iam::123456789012:role/conveyor"


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
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
