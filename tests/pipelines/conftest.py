"""Fixtures of the pipelines tests: known providers, registered for one test.

Other apps register the real Git, Shell and Manual providers when they start;
these tests must not depend on which of them have landed, nor on their rules,
so each test that needs a provider registers a permissive one and the registry
is restored afterwards.
"""

import json
from pathlib import Path

import pytest

from pipelines import providers

# Copies of real CodePipeline documents and API answers (sources in SOURCES.md there).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codepipeline"


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def _strict_checker(action: dict) -> list[tuple[str, str]]:
    """A provider rule to see a provider's problems reported at their path."""
    config = action.get("configuration") or {}
    if "Forbidden" in config:
        return [("configuration.Forbidden", "is not a setting of this provider")]
    return []


TEST_PROVIDERS = [
    ("Source", "Git"),
    ("Source", "CodeStarSourceConnection"),
    ("Source", "CodeCommit"),
    ("Build", "Shell"),
    ("Build", "CodeBuild"),
    ("Test", "CodeBuild"),
    ("Compute", "Commands"),
    ("Test", "Shell"),
    ("Deploy", "Shell"),
    ("Deploy", "Directory"),
    ("Invoke", "Webhook"),
    ("Approval", "Manual"),
]


@pytest.fixture
def known_providers(monkeypatch):
    """Only the providers above, with a permissive checker, for one test (and no custom
    action types: those live in the database, which these tests do not use)."""
    monkeypatch.setattr(providers, "_custom_resolver", None)
    saved = dict(providers._registry)
    providers._registry.clear()
    for category, name in TEST_PROVIDERS:
        providers.register(category, name, _strict_checker, "registered by the pipelines tests")
    yield TEST_PROVIDERS
    providers._registry.clear()
    providers._registry.update(saved)


@pytest.fixture
def no_providers():
    """An empty registry, for one test."""
    saved = dict(providers._registry)
    providers._registry.clear()
    yield
    providers._registry.update(saved)
