"""The migration report: for every action of a definition, whether it runs here.

Each action is one of:

- ``runs`` — a provider of this installation runs it (``runsAs``), maybe with
  notes (which connection it fetches through, which defaults it takes);
- ``needs`` — its provider runs here, but something must exist first (a
  connection, a build project): ``needs`` says what and how to make it; the
  pipeline cannot start until then;
- ``cannot run`` — the provider exists only on AWS: ``nearest`` says the
  nearest way to do the same here;
- ``unknown`` — no provider of that name (validation refuses the document).

``import_pipeline --check``, ``POST /api/pipelines/?dryRun=true``, the
dashboard's pipeline page and the refusal to start all read this one report.
"""

from dataclasses import dataclass, field

from pipelines import providers

# The status of an action, as a person reads it.
STATUS_TEXT = {"runs": "runs here", "needs": "needs something first",
               "cannot run": "cannot run here (AWS only)", "unknown": "no such provider"}


@dataclass
class ActionReport:
    path: str
    stage_name: str
    action_name: str
    category: str
    provider: str
    status: str
    runs_as: str = ""
    needs: list[providers.Readiness] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    nearest: str = ""

    @property
    def blocking(self) -> bool:
        return self.status in ("needs", "cannot run", "unknown")

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]

    def sentence(self) -> str:
        """The report line a person reads, e.g. in a refused start."""
        where = f"{self.stage_name}/{self.action_name} ({self.category} {self.provider})"
        if self.status == "runs":
            return f"{where}: runs here" + "".join(f"; {n}" for n in self.notes)
        if self.status == "needs":
            return f"{where}: " + "; ".join(
                f"needs {r.need}" + (f" — {r.how}" if r.how else "") for r in self.needs)
        if self.status == "cannot run":
            return (f"{where}: cannot run here (AWS only)"
                    + (f"; nearest here: {self.nearest}" if self.nearest else ""))
        return f"{where}: no provider of this name"

    def as_dict(self) -> dict:
        return {
            "path": self.path, "stageName": self.stage_name, "actionName": self.action_name,
            "category": self.category, "provider": self.provider, "status": self.status,
            "runsAs": self.runs_as,
            "needs": [{"need": r.need, "how": r.how} for r in self.needs],
            "notes": self.notes, "nearest": self.nearest,
        }


def migration_report(document: dict) -> list[ActionReport]:
    """One ``ActionReport`` per action of ``document``, in document order.

    The document is assumed to have passed validation's structure checks;
    anything malformed is skipped (validation reports it at its path).
    """
    reports = []
    stages = document.get("stages") if isinstance(document, dict) else None
    for s, stage in enumerate(stages if isinstance(stages, list) else []):
        if not isinstance(stage, dict) or not isinstance(stage.get("actions"), list):
            continue
        for a, action in enumerate(stage["actions"]):
            type_id = action.get("actionTypeId") if isinstance(action, dict) else None
            if not isinstance(type_id, dict):
                continue
            category, provider = str(type_id.get("category")), str(type_id.get("provider"))
            report = ActionReport(path=f"stages[{s}].actions[{a}]",
                                  stage_name=str(stage.get("name")),
                                  action_name=str(action.get("name")),
                                  category=category, provider=provider, status="runs")
            spec = providers.spec_for(type_id)
            if spec is None:
                aws_only = provider in providers.AWS_ONLY_PROVIDERS.get(category, ())
                report.status = "cannot run" if aws_only else "unknown"
                report.nearest = providers.nearest(category, provider) if aws_only else ""
            else:
                report.runs_as = f"{category} {provider}: {spec.description}".rstrip(": ")
                for item in spec.readiness(action):
                    if item.blocking:
                        report.needs.append(item)
                    elif item.note:
                        report.notes.append(item.note)
                if report.needs:
                    report.status = "needs"
            reports.append(report)
    return reports


def blocking(reports: list[ActionReport]) -> list[ActionReport]:
    """The actions that keep the pipeline from starting."""
    return [r for r in reports if r.blocking]
