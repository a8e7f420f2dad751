"""Stage conditions drawn as gates: a stage's ``beforeEntry`` gate before it, its
``onSuccess`` and ``onFailure`` gates after it (docs/conditions.md).

A gate is drawn from the stage's definition even before anything was evaluated
(its kind, result and rules with their providers); the latest evaluation of that
kind (a ``ConditionExecution`` and its ``RuleExecution`` rows) is laid over it when
there is one: the condition's status and each rule's status and summary, and whether
a Commands rule has a log to read (asked when the gate is drawn).

Pure shaping (``stage_gates``) is apart from the two reads (``latest_on_stages``,
``of_stage_executions``), each a fixed number of queries whatever the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conditions import services
from conditions.choices import CONDITION_TYPES, ConditionKind
from conditions.logs import rule_log_exists

KINDS = tuple(ConditionKind.values)   # drawing order: before the stage, then after it
LABELS = {value: str(label) for value, label in ConditionKind.choices}
# What an override does, by kind (conditions.services.stage_condition_override).
OVERRIDE_EFFECTS = {
    "beforeEntry": "the stage's actions start as if the condition had passed",
    "onSuccess": "the stage succeeds as if the condition had passed",
    "onFailure": "the stage stays Failed without its rollback or retry",
}


@dataclass
class RuleRow:
    """One rule of a gate: from the definition, with its latest evaluation if any."""

    name: str
    provider: str
    status: str = ""
    summary: str = ""
    run: Any = field(default=None, compare=False, repr=False)  # its latest RuleExecution

    @property
    def rule_execution_id(self) -> str:
        return str(self.run.rule_execution_id) if self.run is not None else ""

    @property
    def has_log(self) -> bool:
        """A Commands rule that ran its commands has a log to read (asked when drawn: a
        look at the file system)."""
        return (self.run is not None and self.run.provider == "Commands"
                and rule_log_exists(self.run))


@dataclass
class Gate:
    """One condition of a stage, as the dashboard draws it."""

    kind: str
    result: str
    rules: list[RuleRow]
    retry_mode: str = ""
    evaluation: Any = None   # conditions.models.ConditionExecution or None
    overridable: bool = False

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def before(self) -> bool:
        return self.kind == "beforeEntry"

    @property
    def status(self) -> str:
        return self.evaluation.status if self.evaluation is not None else ""

    @property
    def condition_type(self) -> str:
        return CONDITION_TYPES.get(self.kind, "")

    @property
    def number(self) -> int | None:
        """The number of the execution the shown evaluation belongs to."""
        if self.evaluation is None:
            return None
        return self.evaluation.stage_execution.execution.number

    @property
    def override_effect(self) -> str:
        return OVERRIDE_EFFECTS[self.kind]

    @property
    def effect(self) -> str:
        """What the result does, in words (docs/conditions.md, docs/semantics.md §15)."""
        if self.kind == "onFailure" and not self.rules:
            if self.result == "RETRY":
                return ("retry all actions once" if self.retry_mode == "ALL_ACTIONS"
                        else "retry failed actions once")
            if self.result == "ROLLBACK":
                return "roll back to the last good execution"
            return "fail"
        return {"FAIL": "fail", "SKIP": "skip the stage", "ROLLBACK": "roll back",
                "RETRY": "retry"}.get(self.result, self.result.lower())


def _rule_rows(condition: dict) -> list[RuleRow]:
    rows = []
    for rule in condition.get("rules") or []:
        if isinstance(rule, dict):
            type_id = rule.get("ruleTypeId") if isinstance(rule.get("ruleTypeId"), dict) else {}
            rows.append(RuleRow(str(rule.get("name", "")), str(type_id.get("provider", ""))))
    return rows


def definition_gates(stage: dict) -> list[Gate]:
    """The gates a stage's definition declares, in drawing order (before, then after)."""
    gates = []
    for kind in KINDS:
        block = stage.get(kind)
        if not isinstance(block, dict):
            continue
        conditions = block.get("conditions")
        if isinstance(conditions, list) and conditions and isinstance(conditions[0], dict):
            condition = conditions[0]   # exactly one per kind (docs/conditions.md §1)
            retry = condition.get("retryConfiguration") or block.get("retryConfiguration")
            gates.append(Gate(kind, str(condition.get("result", "")), _rule_rows(condition),
                              retry_mode=_retry_mode(retry)))
        elif kind == "onFailure" and block.get("result"):
            gates.append(Gate(kind, str(block["result"]), [],
                              retry_mode=_retry_mode(block.get("retryConfiguration"))))
    return gates


def _retry_mode(configuration: Any) -> str:
    if not isinstance(configuration, dict):
        return ""
    return str(configuration.get("retryMode") or "")


def stage_gates(stage: dict, evaluations: dict[str, Any]) -> list[Gate]:
    """The gates of ``stage`` with ``evaluations`` (kind → latest ConditionExecution) laid
    over them. A rule evaluated but gone from the definition is still shown; a rule
    never evaluated keeps an empty status. ``overridable``: ``override_refusal`` has
    no objection (who may press the button is the page's question)."""
    gates = definition_gates(stage)
    for gate in gates:
        found = evaluations.get(gate.kind)
        if found is None:
            continue
        gate.evaluation = found
        by_name = {r.name: r for r in gate.rules}
        for run in _rules_of(found):
            row = by_name.get(run.rule_name)
            if row is None:
                row = by_name[run.rule_name] = RuleRow(run.rule_name, run.provider)
                gate.rules.append(row)
            row.status, row.summary = run.status, run.summary
            row.provider = row.provider or run.provider
            row.run = run
        gate.overridable = override_refusal(gate) is None
    return gates


def override_refusal(gate: Gate) -> str | None:
    """Why a gate offers no Override button (None when it does): the conditions app's
    own refusal (the one every surface asks), with what the gate shows."""
    if gate.evaluation is None:
        return "not evaluated"
    refusal = services.override_refusal(
        number=gate.number, stage_name=gate.evaluation.stage_execution.stage_name,
        kind=gate.kind, status=gate.status, result=gate.evaluation.result)
    return refusal.message if refusal is not None else None


def _rules_of(evaluation) -> list:
    """The rule executions of an evaluation in the condition's order (prefetched by the
    reads below); the newest of each rule wins when a rule was evaluated more than once."""
    return sorted(evaluation.rule_executions.all(), key=lambda r: (r.position, r.pk))


def latest_on_stages(latest: Iterable) -> dict[str, dict[str, Any]]:
    """stage name → kind → the newest evaluation of that kind by the execution each stage
    shows (``latest``: each stage's newest StageExecution), across that execution's
    attempts at the stage — what GetPipelineState shows (docs/conditions.md §7). Two
    queries (the evaluations, their rules), bounded by the stages, not the history."""
    from django.db.models import Prefetch

    from conditions.models import ConditionExecution, RuleExecution

    shown = {(se.execution_id, se.stage_name) for se in latest}
    if not shown:
        return {}
    rows = (ConditionExecution.objects
            .filter(stage_execution__execution_id__in={pk for pk, _ in shown}).order_by("pk")
            .select_related("stage_execution__execution__pipeline", "overridden_by")
            .prefetch_related(Prefetch("rule_executions",
                                       queryset=RuleExecution.objects.order_by("position", "pk"))))
    found: dict[str, dict[str, Any]] = {}
    for row in rows:   # oldest first: the newest of each kind stays
        se = row.stage_execution
        if (se.execution_id, se.stage_name) in shown:
            found.setdefault(se.stage_name, {})[row.kind] = row
    return found


def of_stage_executions(stage_executions: Iterable) -> dict[int, dict[str, Any]]:
    """stage execution pk → kind → its newest ConditionExecution of that kind.
    Two queries (the evaluations, their rules)."""
    from django.db.models import Prefetch

    from conditions.models import ConditionExecution, RuleExecution

    ids = [se.pk for se in stage_executions]
    if not ids:
        return {}
    rows = (ConditionExecution.objects.filter(stage_execution_id__in=ids).order_by("pk")
            .select_related("stage_execution__execution__pipeline", "overridden_by")
            .prefetch_related(Prefetch("rule_executions",
                                       queryset=RuleExecution.objects.order_by("position", "pk"))))
    found: dict[int, dict[str, Any]] = {}
    for row in rows:   # oldest first: the newest of each kind stays
        found.setdefault(row.stage_execution_id, {})[row.kind] = row
    return found


@dataclass
class StageGates:
    """A stage's gates split by where they are drawn."""

    before: list[Gate] = field(default_factory=list)
    after: list[Gate] = field(default_factory=list)

    @classmethod
    def of(cls, gates: list[Gate]) -> StageGates:
        return cls([g for g in gates if g.before], [g for g in gates if not g.before])
