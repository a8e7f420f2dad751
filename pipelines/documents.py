"""The definition document: parsing, normalizing and exporting.

A document is CodePipeline's pipeline structure. Normalizing fills the defaults
CodePipeline's server fills (owner, version, runOrder, empty lists) and orders
keys the way ``get-pipeline`` prints them, so that two documents meaning the
same pipeline compare equal and an export reads like AWS's.
"""

import json
from typing import Any

import yaml

from config.bodies import (
    FAST_LOADER,
    BodyRefused,
    BoundedSafeLoader,
    check_yaml_events,
    json_loads,
)
from pipelines.choices import ExecutionMode


class DocumentError(ValueError):
    """The text is not a JSON or YAML object."""


class _YAMLLoader(BoundedSafeLoader):
    """Safe YAML that yields only what JSON can hold, without aliases, within the limits
    of ``config.bodies``.

    Dates stay strings (``2024-01-01`` would otherwise become a ``date``, which a
    JSON column cannot store and an export would not give back).
    """


_NO_TIMESTAMPS = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YAMLLoader.yaml_implicit_resolvers = _NO_TIMESTAMPS

if FAST_LOADER is not None:
    class _FastYAMLLoader(FAST_LOADER):
        """libyaml's safe loader with the same resolvers (no timestamps)."""

    _FastYAMLLoader.yaml_implicit_resolvers = _YAMLLoader.yaml_implicit_resolvers


def _load_yaml(text: str) -> Any:
    """Load within the limits of ``config.bodies``; libyaml when PyYAML has it.

    libyaml reads ~10x faster than PyYAML's own scanner: its parse events are checked
    (aliases, depth, count) before anything is built, then it loads. A syntax error is
    reported by PyYAML's own loader instead, whose messages (line, column, problem) are
    the ones the other surfaces show.
    """
    if FAST_LOADER is not None:
        try:
            check_yaml_events(text)
            return yaml.load(text, Loader=_FastYAMLLoader)  # noqa: S506 (CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.load(text, Loader=_YAMLLoader)  # noqa: S506 (a SafeLoader subclass)


def _reject_constant(name: str):
    raise DocumentError(f"{name} is not a number JSON allows")


def _check_json_values(data: Any, path: str = "") -> None:
    """Refuse what JSON cannot represent: non-string keys, NaN and infinities."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                raise DocumentError(f"{path or 'the document'}: key {key!r} is not a string")
            _check_json_values(value, f"{path}.{key}" if path else key)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_json_values(value, f"{path}[{i}]")
    elif isinstance(data, float) and (data != data or data in (float("inf"), float("-inf"))):
        raise DocumentError(f"{path or 'the document'}: {data} is not a number JSON allows")
    elif not isinstance(data, str | int | float | bool | type(None)):
        raise DocumentError(f"{path or 'the document'}: a {type(data).__name__} value is not "
                            "allowed; quote it to make it a string")


def parse_yaml(text: str) -> Any:
    """Parse YAML text into JSON-compatible data (raises ``DocumentError``)."""
    try:
        data = _load_yaml(text)
    except BodyRefused as exc:
        raise DocumentError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise DocumentError(f"not valid JSON or YAML{where}: {problem}") from exc
    _check_json_values(data)
    return data


def parse_text(text: str | bytes) -> Any:
    """Parse JSON or YAML text (YAML is a superset of JSON, JSON is tried first)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError("the document is not UTF-8 text") from exc
    try:
        return json_loads(text, parse_constant=_reject_constant)
    except BodyRefused as exc:
        raise DocumentError(str(exc)) from None
    except json.JSONDecodeError:
        pass
    return parse_yaml(text)


def unwrap(data: Any) -> tuple[Any, dict | None]:
    """Accept a bare pipeline object or a get-pipeline answer ``{"pipeline": …, "metadata": …}``.

    Returns the pipeline object and the wrapper's other fields (kept, not used).
    """
    if isinstance(data, dict) and isinstance(data.get("pipeline"), dict):
        rest = {k: v for k, v in data.items() if k != "pipeline"}
        return data["pipeline"], (rest or None)
    return data, None


_TOP_ORDER = ("name", "roleArn", "artifactStore", "artifactStores", "stages", "version",
              "executionMode", "pipelineType", "variables", "triggers")
_ACTION_ORDER = ("name", "actionTypeId", "runOrder", "configuration", "commands",
                 "environmentVariables", "outputArtifacts", "inputArtifacts", "namespace",
                 "timeoutInMinutes", "roleArn", "region")
_TYPE_ORDER = ("category", "owner", "provider", "version")


def _ordered(obj: dict, order: tuple[str, ...]) -> dict:
    out = {k: obj[k] for k in order if k in obj}
    out.update({k: obj[k] for k in sorted(obj) if k not in out})
    return out


def normalize(doc: dict) -> dict:
    """The canonical form of a *valid* document (validate first; this does not check).

    ``version`` is dropped: it is Conveyor's counter, not part of the definition.
    """
    out = {k: v for k, v in doc.items() if k != "version"}
    out.setdefault("executionMode", ExecutionMode.SUPERSEDED.value)
    out.setdefault("variables", [])
    out.setdefault("triggers", [])
    stages = []
    for stage in doc["stages"]:
        stage_out = dict(stage)
        stage_out["actions"] = [normalize_action(a) for a in stage["actions"]]
        stages.append(_ordered(stage_out, ("name", "actions")))
    out["stages"] = stages
    return _ordered(out, _TOP_ORDER)


def normalize_action(action: dict) -> dict:
    out = dict(action)
    type_id = dict(action["actionTypeId"])
    type_id.setdefault("owner", "Custom")
    type_id["version"] = str(type_id.get("version", "1"))
    out["actionTypeId"] = _ordered(type_id, _TYPE_ORDER)
    out["runOrder"] = int(action.get("runOrder", 1))
    out["configuration"] = dict(action.get("configuration") or {})
    out["inputArtifacts"] = [dict(a) for a in action.get("inputArtifacts") or []]
    out["outputArtifacts"] = [dict(a) for a in action.get("outputArtifacts") or []]
    # An empty list of commands or environment variables says nothing: dropped, so
    # that the rows the admin edits (which cannot tell "empty" from "absent") give
    # the same document back and an unchanged admin save is a no-op.
    for key in ("commands", "environmentVariables"):
        if out.get(key) == []:
            del out[key]
    return _ordered(out, _ACTION_ORDER)


def with_version(doc: dict, version: int) -> dict:
    """The document as exported: normalized order with the version number."""
    out = normalize(doc)
    out["version"] = version
    return _ordered(out, _TOP_ORDER)


# Every pipeline here behaves as a V2 one (docs/conditions.md), so a document that
# names no type is answered as V2.
DEFAULT_PIPELINE_TYPE = "V2"


def pipeline_type(doc: dict) -> str:
    """The document's ``pipelineType``, else ``DEFAULT_PIPELINE_TYPE``."""
    return doc.get("pipelineType") or DEFAULT_PIPELINE_TYPE


def as_declared_by_aws(doc: dict) -> dict:
    """An exported document as CodePipeline answers it: ``executionMode`` and
    ``pipelineType`` always there (its own type, else ``DEFAULT_PIPELINE_TYPE``)."""
    out = dict(doc)
    out.setdefault("executionMode", ExecutionMode.SUPERSEDED.value)
    out["pipelineType"] = pipeline_type(doc)
    return _ordered(out, _TOP_ORDER)


def dump(data: Any, fmt: str = "json") -> str:
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}: use json or yaml")
