"""``Simulate``: a simulation provider, registered for every category.

It does no real work: it sleeps ``DurationSeconds`` (really, and wakes at once
when the action is abandoned or times out), writes a small file into each
output artifact, and ends as ``Outcome`` says. Engine tests and benchmarks use
it to drive the state machine with exactly the outcomes and durations they
need; a pipeline may use it as a placeholder. Configuration:

- ``Outcome``: ``Succeeded`` (default), ``Failed``, or ``Waiting`` (the action
  stays InProgress until completed from outside, like a pending approval);
- ``DurationSeconds``: how long to sleep first (default 0);
- ``OutputVariables``: a JSON object string, the action's output variables;
- ``OutputContent``: the text written into each output artifact (default
  names the execution, so each execution's artifact differs);
- ``Summary``: the summary to end with; ``RevisionId``: a source action's revision.
"""

from __future__ import annotations

import hashlib
import json

from pipelines.choices import ActionCategory
from runners import register
from runners.base import ActionFailed, Result, Revision, RunContext, Runner, Waiting

OUTCOMES = ("Succeeded", "Failed", "Waiting")


@register
class SimulateRunner(Runner):
    provider = "Simulate"
    categories = tuple(ActionCategory.values)
    description = ("A simulation provider: sleeps DurationSeconds, then ends as Outcome says "
                   "(for tests, benchmarks and placeholders).")
    runs_processes = False

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        config = action_doc.get("configuration") or {}
        problems = []
        outcome = config.get("Outcome", "Succeeded")
        # A value with a variable reference is known only at the action's start.
        if outcome not in OUTCOMES and "#{" not in str(outcome):
            problems.append(("configuration.Outcome",
                             f'"{outcome}" is not an outcome: use ' + ", ".join(OUTCOMES)))
        duration = config.get("DurationSeconds", "0")
        try:
            if "#{" not in str(duration) and float(duration) < 0:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(("configuration.DurationSeconds",
                             f'"{duration}" is not a number of seconds'))
        raw = config.get("OutputVariables")
        if raw is not None and "#{" not in str(raw):
            try:
                if not isinstance(json.loads(raw), dict):
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(("configuration.OutputVariables",
                                 "must be a JSON object of names to values"))
        return problems

    def run(self, ctx: RunContext) -> Result | Waiting:
        config = ctx.configuration
        duration = float(config.get("DurationSeconds", "0") or 0)
        outcome = config.get("Outcome", "Succeeded")
        if outcome not in OUTCOMES:
            raise ActionFailed(f'"{outcome}" is not an outcome: use ' + ", ".join(OUTCOMES))
        ctx.log.line(f"Simulating {ctx.category} action {ctx.action_name}: "
                     f"{outcome} after {duration:g} s")
        if duration and ctx.wait_stop(duration):
            raise ActionFailed(f"Simulation interrupted: {ctx.stop_reason}")
        for name, directory in ctx.output_dirs.items():
            content = config.get("OutputContent") or (
                f"{name} of execution {ctx.pipeline_execution_id}\n")
            (directory / f"{name}.txt").write_text(content)
        variables = json.loads(config.get("OutputVariables") or "{}")
        if outcome == "Failed":
            raise ActionFailed(config.get("Summary") or "Simulated failure",
                               output_variables=variables)
        if outcome == "Waiting":
            return Waiting(summary=config.get("Summary") or "Waiting (simulated)")
        revision = None
        if ctx.category == "Source":
            revision_id = (ctx.source_override or {}).get("revisionValue") or config.get(
                "RevisionId") or hashlib.sha1(ctx.pipeline_execution_id.encode()).hexdigest()
            revision = Revision(revision_id=revision_id, summary="Simulated revision",
                                artifact_name=next(iter(ctx.output_dirs), ""))
            variables.setdefault("CommitId", revision_id)
        ctx.log.line(f"Simulated {outcome}")
        return Result(summary=config.get("Summary") or f"Simulated {ctx.category} succeeded",
                      output_variables={k: str(v) for k, v in variables.items()},
                      revision=revision)
