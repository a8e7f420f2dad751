"""Variable resolution: what an action of an execution may reference (``#{...}``), its
document with references resolved, and its input artifacts."""

from __future__ import annotations

import json
import re
from typing import Any

from executions.models import (
    ActionExecution,
    Artifact,
    PipelineExecution,
)
from executions.statuses import A, _stages

REFERENCE_RE = re.compile(r"#\{([^}]*)\}")


class Unresolvable(Exception):
    """A ``#{...}`` reference that has no value at the action's start."""


def _source_override(ex: PipelineExecution, ae: ActionExecution) -> dict | None:
    return next((o for o in ex.source_revision_overrides
                 if o.get("actionName") == ae.action_name), None)


def _variables(ex: PipelineExecution) -> dict[str, str]:
    """Every variable an action of ``ex`` may reference, by reference name."""
    values = {
        "codepipeline.PipelineExecutionId": str(ex.execution_id),
        "codepipeline.PipelineName": ex.pipeline.name,
        "codepipeline.PipelineVersion": str(ex.pipeline_version.number),
    }
    values.update({f"variables.{k}": str(v) for k, v in (ex.variables or {}).items()})
    if not any(a.get("namespace") for stage in _stages(ex) for a in stage["actions"]):
        return values    # no action publishes variables: nothing to look up
    # Namespaces: a rollback sees its target's outputs, then its own.
    sources = [ex.rollback_target, ex] if ex.rollback_target_id else [ex]
    for source in sources:
        for ns, outputs in (ActionExecution.objects
                            .filter(execution=source, status=A.SUCCEEDED)
                            .exclude(namespace="").order_by("id")
                            .values_list("namespace", "output_variables")):
            for key, value in (outputs or {}).items():
                values[f"{ns}.{key}"] = str(value)
    return values


def _resolve(doc: Any, variables: dict[str, str], path: str = "",
             substitute: bool = True) -> Any:
    """Substitute ``#{Namespace.Variable}`` in every string of the action document.

    ``commands`` are only checked, not substituted: a runner that executes them
    passes the values out of band (Shell uses environment variables), so that a
    value can never become code.
    """
    if isinstance(doc, str) and substitute and path.startswith("configuration.") and \
            doc.lstrip()[:1] in ("[", "{") and "#{" in doc:
        # A configuration value holding JSON (CodeBuild's EnvironmentVariables) is
        # resolved inside its strings and written back as JSON: a value with a quote
        # in it (a commit message) stays one string and cannot add an entry.
        try:
            parsed = json.loads(doc)
        except ValueError:
            parsed = None
        if isinstance(parsed, list | dict):
            return json.dumps(_resolve(parsed, variables, path), ensure_ascii=False)
    if isinstance(doc, str):
        def sub(match: re.Match) -> str:
            ref = match.group(1)
            if ref not in variables:
                namespace = ref.partition(".")[0]
                raise Unresolvable(
                    f'Cannot resolve "#{{{ref}}}" in {path or "the action"}: '
                    + (f'namespace "{namespace}" has no variable "{ref.partition(".")[2]}"'
                       if any(k.startswith(namespace + ".") for k in variables)
                       else f'no variable "{ref}" is set in this execution'))
            return variables[ref]
        resolved = REFERENCE_RE.sub(sub, doc)
        return resolved if substitute else doc
    if isinstance(doc, dict):
        # actionTypeId, names and artifact names are not templates.
        return {k: (v if k in ("name", "actionTypeId", "inputArtifacts", "outputArtifacts",
                               "namespace", "runOrder")
                    else _resolve(v, variables, f"{path}.{k}" if path else k,
                                  substitute and k != "commands"))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [_resolve(v, variables, f"{path}[{i}]", substitute) for i, v in enumerate(doc)]
    return doc


def _inputs(ex: PipelineExecution, doc: dict) -> dict[str, str]:
    found = {}
    for item in doc.get("inputArtifacts", []):
        name = item["name"]
        artifact = None
        for source in ([ex, ex.rollback_target] if ex.rollback_target_id else [ex]):
            artifact = (Artifact.objects.filter(execution=source, name=name)
                        .order_by("-id").first())
            if artifact is not None:
                break
        if artifact is None:
            raise Unresolvable(f'Input artifact "{name}" was not produced in this execution')
        found[name] = artifact.storage_name
    return found
