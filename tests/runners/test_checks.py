"""Every runner's configuration checker survives any document (validation must not crash)."""

from __future__ import annotations

import pytest

import runners

OURS = [("Source", "Git"), ("Build", "Shell"), ("Test", "Shell"), ("Deploy", "Shell"),
        ("Deploy", "Directory"), ("Invoke", "Webhook"), ("Invoke", "Python")]

GARBAGE = [None, 1, "text", [], ["a", 1, None], {}, {"x": [1]}, {"#{": "}"}, True]


@pytest.mark.parametrize("category, provider", OURS)
@pytest.mark.parametrize("value", GARBAGE, ids=repr)
def test_a_checker_reports_or_ignores_garbage_but_never_crashes(category, provider, value):
    check = runners.get(category, provider).check
    for field in ("configuration", "commands", "environmentVariables", "inputArtifacts",
                  "outputArtifacts"):
        assert isinstance(check({"name": "A", field: value}), list)
    config_values = {key: value for key in ("RepositoryUrl", "BranchName", "DetectChanges",
                                             "TargetDirectory", "KeepReleases", "Url",
                                             "Secret", "SecretName", "TimeoutSeconds",
                                             "Function", "WorkingDirectory", "Reports")}
    assert isinstance(check({"name": "A", "configuration": config_values,
                             "environmentVariables": [{"name": "X", "value": value,
                                                       "type": "SECRETS_MANAGER"}],
                             "outputArtifacts": [{"name": "O", "files": value}]}), list)
