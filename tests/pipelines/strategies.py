"""Hypothesis strategies: valid definition documents of every shape the rules allow.

Built stage by stage so that each document is valid by construction: artifacts
are consumed only after they are produced, namespaces are referenced only after
the action that defines them, names are unique where they must be. The
providers used are those of ``known_providers`` (tests/pipelines/conftest.py).
"""

import string

from hypothesis import strategies as st

NAME_CHARS = string.ascii_letters + string.digits + ".@_-"
names = st.text(NAME_CHARS, min_size=1, max_size=12)
identifiers = st.text(string.ascii_letters, min_size=1, max_size=8)
# Text people put in configuration values and commands, references excluded.
plain_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")).filter(
        lambda c: c not in "#"),
    max_size=20,
)
extras_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | plain_text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(identifiers, children, max_size=3),
    max_leaves=6,
)
PROVIDERS = {
    "Build": ["Shell"], "Test": ["Shell"], "Deploy": ["Shell", "Directory"],
    "Invoke": ["Webhook"], "Approval": ["Manual"],
}


@st.composite
def definitions(draw) -> dict:
    doc: dict = {"name": draw(names)}
    if draw(st.booleans()):
        doc["executionMode"] = draw(st.sampled_from(["SUPERSEDED", "QUEUED", "PARALLEL"]))
    if draw(st.booleans()):
        doc["pipelineType"] = draw(st.sampled_from(["V1", "V2"]))
    variables = draw(st.lists(identifiers, max_size=3, unique=True))
    if variables or draw(st.booleans()):
        doc["variables"] = [
            {"name": v, **({"defaultValue": draw(plain_text)} if draw(st.booleans()) else {})}
            for v in variables
        ]
    for key in draw(st.lists(st.sampled_from(["roleArn", "artifactStore", "x-team"]),
                             unique=True, max_size=2)):
        doc[key] = draw(extras_values)

    produced: list[str] = []
    namespaces: list[str] = []
    artifact_names = iter(f"Artifact{i}" for i in range(10_000))
    namespace_names = iter(f"Vars{i}" for i in range(10_000))

    def reference() -> str:
        choices = [f"#{{variables.{v}}}" for v in variables]
        choices += [f"#{{{ns}.{draw(identifiers)}}}" for ns in namespaces]
        choices += ["#{codepipeline.PipelineExecutionId}"]
        return draw(st.sampled_from(choices))

    def text_value() -> str:
        return draw(plain_text) + (reference() if draw(st.booleans()) else "")

    stages = []
    stage_count = draw(st.integers(2, 6))
    stage_names = draw(st.lists(names, min_size=stage_count, max_size=stage_count, unique=True))
    for s, stage_name in enumerate(stage_names):
        action_count = draw(st.integers(1, 3))
        action_names = draw(st.lists(names, min_size=action_count, max_size=action_count,
                                     unique=True))
        run_orders = sorted(draw(st.lists(st.integers(1, 3), min_size=action_count,
                                          max_size=action_count)))
        actions = []
        made_by_order: dict[int, list[str]] = {}
        ns_by_order: dict[int, list[str]] = {}
        current = None
        for action_name, run_order in zip(action_names, run_orders, strict=True):
            if run_order != current:  # what lower runOrders made is visible from here
                for order in list(made_by_order):
                    if order < run_order:
                        produced.extend(made_by_order.pop(order))
                        namespaces.extend(ns_by_order.pop(order, []))
                current = run_order
            if s == 0:
                category, provider = "Source", "Git"
            else:
                category = draw(st.sampled_from(sorted(PROVIDERS)))
                provider = draw(st.sampled_from(PROVIDERS[category]))
            action: dict = {
                "name": action_name,
                "actionTypeId": {"category": category, "provider": provider},
            }
            if draw(st.booleans()):
                action["actionTypeId"]["owner"] = "Custom"
            if draw(st.booleans()):
                action["actionTypeId"]["version"] = draw(st.sampled_from(["1", "2", 1]))
            if run_order != 1 or draw(st.booleans()):
                action["runOrder"] = run_order
            config_keys = draw(st.lists(identifiers, max_size=3, unique=True))
            if config_keys or draw(st.booleans()):
                action["configuration"] = {k: text_value() for k in config_keys}
            if s > 0 and produced:
                inputs = draw(st.lists(st.sampled_from(produced), max_size=2, unique=True))
                if inputs or draw(st.booleans()):
                    action["inputArtifacts"] = [{"name": n} for n in inputs]
            outputs = [next(artifact_names) for _ in range(draw(st.integers(0, 2)))]
            if outputs or draw(st.booleans()):
                action["outputArtifacts"] = [
                    {"name": n, **({"files": draw(st.lists(plain_text, max_size=2))}
                                   if draw(st.booleans()) else {})}
                    for n in outputs
                ]
            made_by_order.setdefault(run_order, []).extend(outputs)
            if category in ("Build", "Test", "Deploy") and draw(st.booleans()):
                action["commands"] = [text_value() for _ in range(draw(st.integers(0, 3)))]
            if category in ("Build", "Test") and draw(st.booleans()):
                env_names = draw(st.lists(st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True),
                                          max_size=2, unique=True))
                action["environmentVariables"] = [
                    {"name": n, "value": text_value(),
                     **({"type": "PLAINTEXT"} if draw(st.booleans()) else {})}
                    for n in env_names
                ]
            if draw(st.booleans()):
                ns = next(namespace_names)
                action["namespace"] = ns
                ns_by_order.setdefault(run_order, []).append(ns)
            if draw(st.booleans()):
                action["timeoutInMinutes"] = draw(st.integers(1, 86400))
            if draw(st.booleans()):
                action["region"] = draw(extras_values)
            actions.append(action)
        for order in sorted(made_by_order):
            produced.extend(made_by_order[order])
        for order in sorted(ns_by_order):
            namespaces.extend(ns_by_order[order])
        stage = {"name": stage_name, "actions": actions}
        if draw(st.booleans()):
            result = draw(st.sampled_from(["RETRY", "FAIL"]))
            stage["onFailure"] = {"result": result}
            if result == "RETRY" and draw(st.booleans()):
                stage["onFailure"]["retryConfiguration"] = {
                    "retryMode": draw(st.sampled_from(["FAILED_ACTIONS", "ALL_ACTIONS"]))}
        stages.append(stage)
    doc["stages"] = stages
    if draw(st.booleans()):
        doc["triggers"] = [{
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {
                "sourceActionName": draw(st.sampled_from(
                    [a["name"] for a in stages[0]["actions"]])),
                "push": [{"branches": {"includes": draw(st.lists(plain_text, max_size=2))}}],
            },
        }]
    return doc
