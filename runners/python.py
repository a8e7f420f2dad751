"""Invoke ``Python``: call a function of the worker's Python by its dotted path.

Configuration: ``Function`` — ``package.module.function`` (or
``package.module:function``); every other key is passed to the function in
``context.configuration`` (``UserParameters``, as CodePipeline's Lambda
invoke has it, is one such key by convention).

The function is called with one ``InvokeContext`` argument and runs in the
worker process, on a thread of its own:

- it returns a dict (names to values) → the action Succeeded and the items
  are its output variables (values turned into strings); ``None`` → no variables;
- it raises ``ActionFailed`` → the action Failed with that summary; any other
  exception → Failed with ``<ExceptionType>: <message>`` (the traceback is in
  the action's log);
- it is abandoned or times out → the action ends at once; a thread cannot be
  killed, so a long function should look at ``context.should_stop()``.

The function runs with the worker's rights: only modules installed with
Conveyor can be named, and only pipeline owners can name them.
"""

from __future__ import annotations

import importlib
import re
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners import register
from runners.base import ActionFailed, Result, RunContext, Runner
from runners.checks import configuration_of

FUNCTION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
                         r"([.:][A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class InvokeContext:
    """What an invoked function is given (a stable, public subset of the run context)."""

    pipeline_name: str
    pipeline_execution_id: str
    execution_number: int
    stage_name: str
    action_name: str
    action_execution_id: str
    attempt: int
    configuration: dict[str, str]
    variables: dict[str, str]
    input_dirs: dict[str, Path]
    output_dirs: dict[str, Path]
    workspace: Path
    _ctx: RunContext

    def log(self, message: str) -> None:
        """Append a line to the action's live log."""
        self._ctx.log.line(message)

    def should_stop(self) -> bool:
        """True once the action was abandoned or timed out: return soon."""
        return self._ctx.should_stop()


def load_function(path: str):
    """The callable ``path`` names; ``ActionFailed`` saying why when there is none."""
    if not FUNCTION_RE.match(path or ""):
        raise ActionFailed(f'Function "{path}" is not a dotted path such as package.module.name')
    module_name, _, name = path.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ActionFailed(f'Function "{path}": cannot import {module_name}: {exc}') from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise ActionFailed(f'Function "{path}": {module_name} has no function "{name}"')
    return function


@register
class PythonInvokeRunner(Runner):
    provider = "Python"
    categories = ("Invoke",)
    description = "Calls a Python function of the worker by its dotted path."
    default_timeout_minutes = 60

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        config = configuration_of(action_doc)
        function = config.get("Function")
        if not function or not isinstance(function, str):
            return [("configuration.Function", "is required")]
        if "#{" not in function and not FUNCTION_RE.match(function):
            return [("configuration.Function",
                     f'"{function}" is not a dotted path such as package.module.name')]
        return []

    def run(self, ctx: RunContext) -> Result:
        path = ctx.configuration.get("Function", "")
        function = load_function(path)
        context = InvokeContext(
            pipeline_name=ctx.pipeline_name, pipeline_execution_id=ctx.pipeline_execution_id,
            execution_number=ctx.execution_number, stage_name=ctx.stage_name,
            action_name=ctx.action_name, action_execution_id=ctx.action_execution_id,
            attempt=ctx.attempt,
            configuration={k: v for k, v in ctx.configuration.items() if k != "Function"},
            variables=dict(ctx.variables), input_dirs=dict(ctx.input_dirs),
            output_dirs=dict(ctx.output_dirs), workspace=ctx.workspace, _ctx=ctx,
        )
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def call() -> None:
            try:
                outcome["value"] = function(context)
            except BaseException as exc:  # noqa: BLE001 (reported to the action, below)
                outcome["error"] = exc
                outcome["traceback"] = traceback.format_exc()
            finally:
                done.set()

        ctx.log.line(f"Calling {path}")
        thread = threading.Thread(target=call, name=f"invoke-{ctx.action_execution_id}",
                                  daemon=True)
        thread.start()
        while not done.wait(0.1):
            if ctx.should_stop():
                raise ActionFailed(f"Stopped: {ctx.stop_reason} ({path} was left to finish "
                                   "on its own: a thread cannot be killed)")
        if ctx.should_stop():  # it returned because it saw the stop: the stop is the outcome
            raise ActionFailed(f"Stopped: {ctx.stop_reason}")
        if "error" in outcome:
            exc = outcome["error"]
            if isinstance(exc, ActionFailed):
                raise exc
            ctx.log.write(outcome["traceback"])
            message = str(exc) or "(no message)"
            raise ActionFailed(f"{type(exc).__name__}: {message}"[:2000])
        value = outcome.get("value")
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ActionFailed(f"{path} returned a {type(value).__name__}, not a dict of "
                               "output variables")
        variables = {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}
        n = len(variables)
        return Result(summary=f"{path} returned {n} output variable{'s' if n != 1 else ''}",
                      output_variables=variables)
