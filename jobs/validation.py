"""Custom action types: their definition's rules, and pipelines' actions checked against them.

``type_problems`` checks a type as CreateCustomActionType / the admin / REST receive
it; ``custom_spec`` is the resolver ``pipelines.providers.spec_for`` asks about an
actionTypeId that names no built-in provider: its checker validates an action's
configuration and artifacts against the declared properties (docs/job-workers.md).
"""

from __future__ import annotations

import re

from jobs.choices import PropertyType
from pipelines.providers import ProviderSpec

NAME_RE = r"[0-9A-Za-z_-]+"
QUERYABLE_RE = r"[a-zA-Z0-9_-]+"
# AWS: a queryable property's value in a pipeline is at most 20 characters.
QUERYABLE_MAX = 20
PROPERTY_FIELDS = {"name", "required", "key", "secret", "queryable", "description", "type"}
CATEGORIES = ("Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute")


def type_problems(data: dict) -> list[tuple[str, str]]:
    """Problems of an action type's definition as (JSON path, message), all at once.

    ``data`` has AWS's member names: category, provider, version, settings,
    configurationProperties, inputArtifactDetails, outputArtifactDetails.
    """
    problems: list[tuple[str, str]] = []
    if data.get("category") not in CATEGORIES:
        problems.append(("category", f"must be one of {', '.join(CATEGORIES)}"))
    for member, limit in (("provider", 35), ("version", 9)):
        value = data.get(member)
        if not isinstance(value, str) or not re.fullmatch(NAME_RE, value) or len(value) > limit:
            problems.append((member, f"must be 1 to {limit} letters, digits, _ or -"))
    for member in ("inputArtifactDetails", "outputArtifactDetails"):
        details = data.get(member)
        if not isinstance(details, dict):
            problems.append((member, "is required: {minimumCount, maximumCount}"))
            continue
        low, high = details.get("minimumCount"), details.get("maximumCount")
        for name, value in (("minimumCount", low), ("maximumCount", high)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 5:
                problems.append((f"{member}.{name}", "must be a whole number from 0 to 5"))
        if isinstance(low, int) and isinstance(high, int) and low > high:
            problems.append((member, "minimumCount is more than maximumCount"))
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        problems.append(("settings", "must be an object"))
        settings = {}
    for key, value in settings.items():
        if key not in ("thirdPartyConfigurationUrl", "entityUrlTemplate",
                       "executionUrlTemplate", "revisionUrlTemplate"):
            problems.append((f"settings.{key}", "is not a setting of an action type"))
        elif not isinstance(value, str) or not value.startswith(("http://", "https://")):
            problems.append((f"settings.{key}", "must be an http(s) URL (template)"))
    properties = data.get("configurationProperties") or []
    if not isinstance(properties, list) or len(properties) > 10:
        problems.append(("configurationProperties", "must be a list of at most 10 properties"))
        return problems
    names: set[str] = set()
    queryable: list[str] = []
    for i, prop in enumerate(properties):
        path = f"configurationProperties[{i}]"
        if not isinstance(prop, dict):
            problems.append((path, "must be an object"))
            continue
        for key in sorted(set(prop) - PROPERTY_FIELDS):
            problems.append((f"{path}.{key}", "is not a field of a configuration property"))
        name = prop.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 50:
            problems.append((f"{path}.name", "must be 1 to 50 characters"))
        elif name in names:
            problems.append((f"{path}.name", f'property "{name}" is declared twice'))
        else:
            names.add(name)
        for flag in ("required", "key", "secret"):
            if not isinstance(prop.get(flag), bool):
                problems.append((f"{path}.{flag}", "is required: true or false"))
        if "queryable" in prop and not isinstance(prop["queryable"], bool):
            problems.append((f"{path}.queryable", "must be true or false"))
        if "type" in prop and prop["type"] not in PropertyType.values:
            problems.append((f"{path}.type", f"must be one of {', '.join(PropertyType.values)}"))
        if prop.get("queryable") is True:
            queryable.append(path)
            if prop.get("required") is not True:
                problems.append((f"{path}.queryable", "a queryable property must be required"))
            if prop.get("secret") is True:
                problems.append((f"{path}.queryable", "a queryable property cannot be secret"))
    if len(queryable) > 1:
        problems.append((f"{queryable[1]}.queryable",
                         "an action type has at most one queryable property"))
    return problems


def action_problems(action_type, action_doc: dict) -> list[tuple[str, ...]]:
    """An action's configuration and artifacts checked against its custom type."""
    problems: list[tuple[str, ...]] = []
    config = action_doc.get("configuration") or {}
    if not isinstance(config, dict):
        return problems   # pipelines.validation reports the shape
    declared = {p["name"]: p for p in action_type.properties()}
    label = str(action_type)
    for key in config:
        if key not in declared:
            problems.append((f"configuration.{key}",
                             f'is not a configuration property of action type {label}: use '
                             + (", ".join(sorted(declared)) or "none (it declares none)")))
    for name, prop in declared.items():
        value = config.get(name)
        path = f"configuration.{name}"
        if value is None or value == "":
            if prop.get("required"):
                problems.append((path, "is required"))
            continue
        if not isinstance(value, str):
            continue
        if "#{" in value:
            continue   # a variable reference: its value is known when the action runs
        kind = prop.get("type", "String")
        if kind == "Number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            problems.append((path, f'must be a number, not "{value}"'))
        if kind == "Boolean" and value.lower() not in ("true", "false"):
            problems.append((path, f'must be true or false, not "{value}"'))
        if prop.get("queryable"):
            if len(value) > QUERYABLE_MAX:
                problems.append((path, f"a queryable value is at most {QUERYABLE_MAX} "
                                 f"characters, not {len(value)}"))
            elif not re.fullmatch(QUERYABLE_RE, value):
                problems.append((path, "a queryable value has only letters, digits, _ and -"))
    for member, low, high in (("inputArtifacts", action_type.input_minimum,
                               action_type.input_maximum),
                              ("outputArtifacts", action_type.output_minimum,
                               action_type.output_maximum)):
        items = action_doc.get(member) or []
        count = len(items) if isinstance(items, list) else 0
        if not low <= count <= high:
            problems.append((member, f"action type {label} takes {low} to {high} "
                             f"{member}, not {count}"))
    return problems


def custom_spec(category: str, owner: str, provider: str, version: str) -> ProviderSpec | None:
    """``pipelines.providers`` resolver: the spec of a registered custom action type."""
    from jobs.routing import custom_type

    action_type = custom_type(category, owner, provider, version)
    if action_type is None:
        return None
    secret = frozenset(p["name"] for p in action_type.properties() if p.get("secret"))
    return ProviderSpec(
        category, provider, lambda doc: action_problems(action_type, doc),
        f"custom action type {action_type}, run by its job workers", secret_keys=secret)
