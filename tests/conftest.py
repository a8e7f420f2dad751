"""Shared fixtures: personas for access control and a factory for definitions."""

import os

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import definition  # noqa: F401  (re-exported for tests)
from tests.roles import ensure_role_groups


def _user(username: str, group: str | None = None, **extra) -> User:
    ensure_role_groups()
    user = User.objects.create_user(username, f"{username}@example.com", "pw-" + username, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Hash test passwords cheaply (tests/hashers.py): the default costs ~0.5 s a user."""
    from django.conf import settings
    from django.contrib.auth import hashers

    settings.PASSWORD_HASHERS = ["tests.hashers.FastPBKDF2PasswordHasher"]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def _private_channel_layer():
    """A channels-redis layer of this test process only (its own key prefix).

    The live doorbell is one group for every process on the Redis database: without a
    prefix of its own, a test here would hear the rings of another test process
    (a parallel worker of this run, or another run on the same machine).
    """
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS.get("default", {})
    if layer.get("BACKEND", "").startswith("channels_redis."):
        layer.setdefault("CONFIG", {})["prefix"] = private_channel_prefix()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets new channel layer instances.

    A test's websockets run on an event loop of their own (``async_to_sync`` per
    test). channels-redis keeps one ``receive_lock`` per layer instance, bound to
    the loop that first waited on it; a receive cancelled when a test's loop ended
    left it held and bound, and every later test of the process failed with "Lock
    ... is bound to a different event loop" (one daphne process has one loop: a
    test-harness problem, not a production one).
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def private_channel_prefix() -> str:
    """The channels-redis key prefix of this test process (see ``_private_channel_layer``)."""
    return f"conveyor-test-{os.getpid()}"


@pytest.fixture
def owner(db) -> User:
    """Defines pipelines (group "owners")."""
    return _user("olivia", "owners", is_staff=True)


@pytest.fixture
def operator(db) -> User:
    """Runs pipelines but cannot edit their definitions (group "operators")."""
    return _user("oscar", "operators")


@pytest.fixture
def viewer(db) -> User:
    """Looks only (group "viewers")."""
    return _user("vera", "viewers")


@pytest.fixture
def outsider(db) -> User:
    """Signed in, in no group: may see nothing."""
    return _user("otto")


@pytest.fixture
def api():
    """``api(user)`` is an APIClient authenticated with the user's token (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Artifacts, logs, workspaces, git mirrors, build caches and secrets of each test live
    in its own temporary folder."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.LOG_ROOT = tmp_path / "logs"
    settings.WORKSPACE_ROOT = tmp_path / "workspaces"
    settings.CONVEYOR_GIT_CACHE_ROOT = tmp_path / "git-cache"
    settings.CONVEYOR_SECRETS_DIR = tmp_path / "secrets"
    settings.CONVEYOR_BUILD_CACHE_ROOT = tmp_path / "build-cache"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
