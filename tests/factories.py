"""Factories for the Pipeline → Stage → Action graph, as definition documents."""

import copy


def action(name: str, category: str = "Build", provider: str = "Shell", **fields) -> dict:
    body = {"name": name, "actionTypeId": {"category": category, "owner": "Custom",
                                           "provider": provider, "version": "1"}}
    body.update(fields)
    return body


def definition(name: str = "demo", stages: list | None = None, **fields) -> dict:
    """A valid definition: by default a Source stage and a Build stage.

    ``stages`` is a list of (stage name, [action, ...]) pairs.
    """
    if stages is None:
        stages = [
            ("Source", [action("Checkout", "Source", "Git",
                               configuration={"RepositoryUrl": "/tmp/repo",
                                              "BranchName": "main"},
                               outputArtifacts=[{"name": "SourceOutput"}])]),
            ("Build", [action("Compile", commands=["true"],
                              inputArtifacts=[{"name": "SourceOutput"}])]),
        ]
    doc = {"name": name, "stages": [{"name": n, "actions": copy.deepcopy(a)} for n, a in stages]}
    doc.update(fields)
    return doc
