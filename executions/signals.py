"""Signals the engine sends, after the transaction that caused them commits.

Other apps listen to these instead of being imported by ``executions``
(imports point one way: approvals -> executions -> pipelines).

- ``action_ended(sender, action_execution, status, summary)``: every action
  execution that ended (Succeeded, Failed, Abandoned), however it ended —
  finished by its runner, completed from outside, abandoned by a stop,
  timed out, lost by its worker, or abandoned because its execution was
  superseded. The approvals app closes a pending ApprovalRequest here.
- ``action_abandoned(sender, action_execution, reason, superseded_by)``: an
  action was Abandoned (stop-and-abandon, or docs/semantics.md §10: a waiting approval of an
  execution that a newer one superseded; ``superseded_by`` is then that newer
  PipelineExecution, else None).
- ``execution_superseded(sender, execution, superseded_by)``: an execution
  ended Superseded (docs/semantics.md §3 or docs/semantics.md §10).
- ``events_appended(sender, pipeline_id, execution_ids, last_event_id)``: new
  ExecutionEvent rows were committed (the live dashboard's doorbell).

- ``agent_action_started(sender, action_execution, action)``: an action routed to agents
  (``configuration.RunOn``) was made, waiting for an agent. Sent synchronously, inside the
  engine's transaction: the jobs app makes its Job there (docs/job-workers.md, Agents), so
  the action and its job commit together.
- ``sweeping(sender, now)``: the sweeper is about to look for actions nobody will finish;
  other apps end their own expired work first (jobs: docs/job-workers.md). Sent
  synchronously, in the sweeper's process.
- ``swept(sender, now)``: the sweeper has run (every minute); the conditions app
  evaluates the rules that wait (a deployment window) when their time has come.

``sender`` is the ``executions.statuses`` module (the engine's status helper), and
the engine module for ``sweeping`` and ``swept``.
"""

from django.dispatch import Signal

action_ended = Signal()
action_abandoned = Signal()
execution_superseded = Signal()
events_appended = Signal()
agent_action_started = Signal()
sweeping = Signal()
swept = Signal()
