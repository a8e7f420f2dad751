"""Validation of definition documents.

``validate_document`` returns every problem at once, each with the JSON path it
is about and a sentence a person understands, e.g.
``stages[2].actions[0].inputArtifacts[0]: artifact "BuildOutput" is not produced
by any earlier action``. Errors prevent saving; warnings (an action whose
provider exists only on AWS) are saved and prevent starting an execution.
"""

import re
from dataclasses import dataclass
from typing import Any

from pipelines import fields, providers
from pipelines.choices import ActionCategory, ActionOwner, ExecutionMode
from pipelines.validation_conditions import (
    ConditionChecks,
)

NAME_RE = re.compile(r"^[A-Za-z0-9.@_-]{1,100}$")
ARTIFACT_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
VARIABLE_RE = re.compile(r"^[A-Za-z0-9@_-]{1,128}$")
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9@_-]{1,100}$")
REFERENCE_RE = re.compile(r"#\{([^}]*)\}")
MAX_STAGES = 50
MAX_ACTIONS = 50
MAX_TIMEOUT_MINUTES = 86400  # 60 days, CodePipeline's ceiling
# Variables every execution has, under the reserved namespace "codepipeline".
CODEPIPELINE_VARIABLES = frozenset({"PipelineExecutionId", "PipelineName", "PipelineVersion"})
ENV_TYPES = ("PLAINTEXT", "SECRETS_MANAGER")

NAME_RULE = "letters, digits and . @ _ - only, 1 to 100 characters"



@dataclass(frozen=True)
class Problem:
    """One problem of a document: where (a JSON path) and what, in a sentence."""

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict:
        return {"path": self.path, "message": self.message, "severity": self.severity}


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def warnings(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "warning"]


def _type_name(value: Any) -> str:
    return {
        dict: "an object", list: "a list", str: "a string", bool: "a boolean",
        int: "a number", float: "a number", type(None): "null",
    }.get(type(value), type(value).__name__)


class _Validator(ConditionChecks):
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(path, message, severity))

    def expect(self, path: str, value: Any, kind: type, what: str) -> bool:
        # bool is an int in Python; a runOrder of true is still wrong.
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return True
        self.add(path, f"must be {what}, not {_type_name(value)}")
        return False

    def name(self, path: str, value: Any, pattern: re.Pattern = NAME_RE,
             rule: str = NAME_RULE) -> bool:
        if value is None:
            self.add(path, "is required")
            return False
        if not self.expect(path, value, str, "a string"):
            return False
        if not pattern.match(value):
            self.add(path, f'"{value}" is not a valid name: use {rule}')
            return False
        return True

    def fields(self, path: str, obj: dict, level: str, template: str | None = None) -> None:
        """Warn at the path of every key of ``obj`` Conveyor does not act on.

        ``level`` names the key set in ``pipelines.fields.KNOWN``; ``template``
        is the object's path with ``[]`` for list items (for ``fields.WARNED``).
        """
        known = fields.KNOWN[level]
        template = level if template is None else template
        for key in obj:
            kpath = f"{path}.{key}" if path else key
            if key not in known:
                self.add(kpath, f'"{key}" is not a field of a CodePipeline pipeline at this '
                         "place: Conveyor does not use it (a typo?)", severity="warning")
                continue
            why = fields.WARNED.get(f"{template}.{key}" if template else key)
            if why:
                self.add(kpath, why, severity="warning")

    def string_list(self, path: str, value: Any) -> list[str]:
        if not self.expect(path, value, list, "a list"):
            return []
        good = []
        for i, item in enumerate(value):
            if self.expect(f"{path}[{i}]", item, str, "a string"):
                good.append(item)
        return good

    # --- the document -----------------------------------------------------

    def run(self, doc: Any) -> list[Problem]:
        if not isinstance(doc, dict):
            self.add("", f"the definition must be an object, not {_type_name(doc)}")
            return self.problems
        self.fields("", doc, "")
        self.name("name", doc.get("name"))
        self.json_numbers("", doc)
        mode = doc.get("executionMode", ExecutionMode.SUPERSEDED.value)
        if mode not in ExecutionMode.values:
            self.add("executionMode", f'"{mode}" is not an execution mode: use '
                     + ", ".join(ExecutionMode.values))
        if "pipelineType" in doc and doc["pipelineType"] not in ("V1", "V2"):
            self.add("pipelineType",
                     f'"{doc["pipelineType"]}" is not a pipeline type: use V1 or V2')
        variables = self.variables(doc.get("variables", []))
        stages = doc.get("stages")
        if stages is None:
            self.add("stages", "is required")
            return self.problems
        if not self.expect("stages", stages, list, "a list"):
            return self.problems
        if len(stages) < 2:
            self.add("stages", f"a pipeline needs at least 2 stages, this one has {len(stages)}")
        if len(stages) > MAX_STAGES:
            self.add("stages", f"a pipeline has at most {MAX_STAGES} stages, "
                     f"this one has {len(stages)}")
        self.stages(stages, variables, mode)
        self.triggers(doc.get("triggers", []), stages)
        return self.problems

    def json_numbers(self, path: str, value: Any) -> None:
        """Infinity and NaN anywhere (kept fields included): JSON, and the row, cannot hold them."""
        if isinstance(value, float) and (value != value or value in (float("inf"),
                                                                     float("-inf"))):
            self.add(path, f"{value} is not a number JSON allows")
        elif isinstance(value, dict):
            for key, item in value.items():
                self.json_numbers(f"{path}.{key}" if path else str(key), item)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.json_numbers(f"{path}[{i}]", item)

    def variables(self, value: Any) -> set[str]:
        names: set[str] = set()
        if not self.expect("variables", value, list, "a list"):
            return names
        for i, var in enumerate(value):
            path = f"variables[{i}]"
            if not self.expect(path, var, dict, "an object"):
                continue
            self.fields(path, var, "variables[]")
            if self.name(f"{path}.name", var.get("name"), VARIABLE_RE,
                         "letters, digits and @ _ - only, 1 to 128 characters"):
                if var["name"] in names:
                    self.add(f"{path}.name", f'variable "{var["name"]}" is declared twice')
                names.add(var["name"])
            for key in ("defaultValue", "description"):
                if key in var:
                    self.expect(f"{path}.{key}", var[key], str, "a string")
        return names

    def stages(self, stages: list, variables: set[str], mode: Any = "SUPERSEDED") -> None:
        stage_names: set[str] = set()
        # Artifacts and namespaces produced by earlier stages: name -> producer path.
        produced: dict[str, str] = {}
        namespaces: dict[str, str] = {}
        for s, stage in enumerate(stages):
            path = f"stages[{s}]"
            if not self.expect(path, stage, dict, "an object"):
                continue
            self.fields(path, stage, "stages[]")
            if self.name(f"{path}.name", stage.get("name")):
                if stage["name"] in stage_names:
                    self.add(f"{path}.name", f'stage name "{stage["name"]}" is used twice')
                stage_names.add(stage["name"])
            actions = stage.get("actions")
            if actions is None:
                self.add(f"{path}.actions", "is required")
                continue
            if not self.expect(f"{path}.actions", actions, list, "a list"):
                continue
            if not actions:
                self.add(f"{path}.actions", "a stage needs at least one action")
            if len(actions) > MAX_ACTIONS:
                self.add(f"{path}.actions", f"a stage has at most {MAX_ACTIONS} actions, "
                         f"this one has {len(actions)}")
            before = (dict(produced), dict(namespaces))
            self.stage_actions(s, actions, variables, produced, namespaces)
            self.stage_conditions(s, stage, variables, before, (produced, namespaces), mode)

    # --- stage conditions ---------------------------------------------------

    def stage_actions(self, s: int, actions: list, variables: set[str],
                      produced: dict[str, str], namespaces: dict[str, str]) -> None:
        action_names: set[str] = set()
        # Within a stage, an action sees what earlier stages and lower runOrders made.
        entries = []
        for a, action in enumerate(actions):
            path = f"stages[{s}].actions[{a}]"
            if not self.expect(path, action, dict, "an object"):
                continue
            self.fields(path, action, "stages[].actions[]")
            if self.name(f"{path}.name", action.get("name")):
                if action["name"] in action_names:
                    self.add(f"{path}.name",
                             f'action name "{action["name"]}" is used twice in this stage')
                action_names.add(action["name"])
            run_order = action.get("runOrder", 1)
            if self.expect(f"{path}.runOrder", run_order, int, "a whole number") and not (
                1 <= run_order <= 999
            ):
                self.add(f"{path}.runOrder", f"must be between 1 and 999, not {run_order}")
                run_order = 1
            if not isinstance(run_order, int):
                run_order = 1
            category = self.action_type(path, action, first_stage=(s == 0))
            entries.append((a, path, action, run_order, category))

        for run_order in sorted({e[3] for e in entries}):
            group = [e for e in entries if e[3] == run_order]
            made_here: dict[str, str] = {}
            ns_here: dict[str, str] = {}
            for _a, path, action, _, category in group:
                self.action_body(path, action, category, variables, produced, namespaces)
                for o, out in enumerate(self.artifacts(f"{path}.outputArtifacts",
                                                       action.get("outputArtifacts", []),
                                                       output=True)):
                    where = produced.get(out) or made_here.get(out)
                    if where:
                        self.add(f"{path}.outputArtifacts[{o}].name",
                                 f'artifact "{out}" is already produced by {where}')
                    else:
                        made_here[out] = path
                ns = action.get("namespace")
                # An explicit null is refused rather than skipped: the row has no NULL.
                if "namespace" in action and self.expect(
                    f"{path}.namespace", ns, str, "a string"
                ) and self.name(f"{path}.namespace", ns, NAMESPACE_RE,
                                "letters, digits and @ _ - only"):
                    if ns == "codepipeline" or ns == "variables":
                        self.add(f"{path}.namespace", f'"{ns}" is reserved')
                    elif ns in namespaces or ns in ns_here:
                        self.add(f"{path}.namespace", f'namespace "{ns}" is already used by '
                                 f"{namespaces.get(ns) or ns_here.get(ns)}")
                    else:
                        ns_here[ns] = path
            produced.update(made_here)
            namespaces.update(ns_here)

    def action_type(self, path: str, action: dict, first_stage: bool) -> str | None:
        type_id = action.get("actionTypeId")
        tpath = f"{path}.actionTypeId"
        if type_id is None:
            self.add(tpath, "is required")
            return None
        if not self.expect(tpath, type_id, dict, "an object"):
            return None
        self.fields(tpath, type_id, "stages[].actions[].actionTypeId")
        category = type_id.get("category")
        if category is None:
            self.add(f"{tpath}.category", "is required")
            return None
        if category not in ActionCategory.values:
            self.add(f"{tpath}.category", f'"{category}" is not a category: use '
                     + ", ".join(ActionCategory.values))
            return None
        owner = type_id.get("owner", "Custom")
        if owner not in ActionOwner.values:
            self.add(f"{tpath}.owner", f'"{owner}" is not an owner: use '
                     + ", ".join(ActionOwner.values))
        version = type_id.get("version", "1")
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)
        if not isinstance(version, str) or not re.match(r"^[0-9A-Za-z_-]{1,9}$", version):
            self.add(f"{tpath}.version", "must be a short version string such as \"1\"")
        if first_stage and category != "Source":
            self.add(tpath + ".category",
                     f"the first stage holds only Source actions, this one is {category}")
        if not first_stage and category == "Source":
            self.add(tpath + ".category", "Source actions belong in the first stage only")
        provider = type_id.get("provider")
        if provider is None:
            self.add(f"{tpath}.provider", "is required")
            return None
        if not self.expect(f"{tpath}.provider", provider, str, "a string"):
            return None
        return category

    def action_body(self, path: str, action: dict, category: str | None, variables: set[str],
                    produced: dict[str, str], namespaces: dict[str, str]) -> None:
        for i, name in enumerate(self.artifacts(f"{path}.inputArtifacts",
                                                action.get("inputArtifacts", []),
                                                output=False)):
            if name not in produced:
                self.add(f"{path}.inputArtifacts[{i}]",
                         f'artifact "{name}" is not produced by any earlier action')
        config = action.get("configuration", {})
        if config is None:
            config = {}
        if self.expect(f"{path}.configuration", config, dict, "an object"):
            for key, value in config.items():
                if self.expect(f"{path}.configuration.{key}", value, str, "a string"):
                    self.references(f"{path}.configuration.{key}", value, variables, namespaces)
        else:
            config = {}
        if "commands" in action:
            for i, command in enumerate(self.string_list(f"{path}.commands", action["commands"])):
                self.references(f"{path}.commands[{i}]", command, variables, namespaces)
        if "outputVariables" in action:
            self.string_list(f"{path}.outputVariables", action["outputVariables"])
            provider = (action.get("actionTypeId") or {}).get("provider") \
                if isinstance(action.get("actionTypeId"), dict) else None
            if provider != "Commands":
                self.add(f"{path}.outputVariables", "is used only by the Commands action: "
                         f"{provider} ignores it", severity="warning")
        if "environmentVariables" in action:
            self.environment(f"{path}.environmentVariables", action["environmentVariables"],
                             variables, namespaces)
        if "timeoutInMinutes" in action:
            t = action["timeoutInMinutes"]
            if self.expect(f"{path}.timeoutInMinutes", t, int, "a whole number") and not (
                1 <= t <= MAX_TIMEOUT_MINUTES
            ):
                self.add(f"{path}.timeoutInMinutes",
                         f"must be between 1 and {MAX_TIMEOUT_MINUTES} minutes, not {t}")
        if category is None:
            return
        provider = action["actionTypeId"]["provider"]
        spec = providers.spec_for(action["actionTypeId"])
        if spec is None:
            if provider in providers.AWS_ONLY_PROVIDERS.get(category, ()):
                self.add(f"{path}.actionTypeId.provider",
                         f'provider "{provider}" exists only on AWS: this action cannot run '
                         "in Conveyor", severity="warning")
            else:
                known = providers.providers_for(category)
                self.add(f"{path}.actionTypeId.provider",
                         f'"{provider}" is not a provider of category {category}: '
                         + (f'use {", ".join(known)}' if known
                            else "no provider of this category is installed"))
            return
        # A checker answers (path, message) or (path, message, "warning").
        for rel, message, *severity in spec.check(action):
            self.add(f"{path}.{rel}" if rel else path, message, *severity[:1])

    def artifacts(self, path: str, value: Any, output: bool) -> list[str]:
        if value is None:
            return []
        if not self.expect(path, value, list, "a list"):
            return []
        names = []
        for i, item in enumerate(value):
            ipath = f"{path}[{i}]"
            if not self.expect(ipath, item, dict, "an object"):
                continue
            self.fields(ipath, item, "stages[].actions[].outputArtifacts[]" if output
                        else "stages[].actions[].inputArtifacts[]")
            if self.name(f"{ipath}.name", item.get("name"), ARTIFACT_RE,
                         "letters, digits, _ and - only, 1 to 100 characters"):
                names.append(item["name"])
            if output and "files" in item:
                self.string_list(f"{ipath}.files", item["files"])
        return names

    def environment(self, path: str, value: Any, variables: set[str],
                    namespaces: dict[str, str]) -> None:
        if not self.expect(path, value, list, "a list"):
            return
        seen: set[str] = set()
        for i, item in enumerate(value):
            ipath = f"{path}[{i}]"
            if not self.expect(ipath, item, dict, "an object"):
                continue
            self.fields(ipath, item, "stages[].actions[].environmentVariables[]")
            name = item.get("name")
            if name is None:
                self.add(f"{ipath}.name", "is required")
            elif self.expect(f"{ipath}.name", name, str, "a string"):
                if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                    self.add(f"{ipath}.name", f'"{name}" is not an environment variable name')
                elif name in seen:
                    self.add(f"{ipath}.name", f'environment variable "{name}" is set twice')
                seen.add(name)
            val = item.get("value")
            if val is None:
                self.add(f"{ipath}.value", "is required")
            elif self.expect(f"{ipath}.value", val, str, "a string"):
                self.references(f"{ipath}.value", val, variables, namespaces)
            kind = item.get("type", "PLAINTEXT")
            if kind not in ENV_TYPES:
                self.add(f"{ipath}.type", f'"{kind}" is not a type: use ' + ", ".join(ENV_TYPES))

    def references(self, path: str, text: str, variables: set[str],
                   namespaces: dict[str, str]) -> None:
        for ref in REFERENCE_RE.findall(text):
            namespace, dot, variable = ref.partition(".")
            if not dot or not namespace or not variable:
                self.add(path, f'"#{{{ref}}}" is not a variable reference: '
                         "use #{Namespace.Variable}")
            elif namespace == "variables":
                if variable not in variables:
                    self.add(path, f'"#{{{ref}}}" refers to pipeline variable "{variable}", '
                             "which is not declared in variables")
            elif namespace == "codepipeline":
                if variable not in CODEPIPELINE_VARIABLES:
                    self.add(path, f'"#{{{ref}}}" is not a codepipeline variable: use '
                             + ", ".join(sorted(CODEPIPELINE_VARIABLES)))
            elif namespace not in namespaces:
                self.add(path, f'"#{{{ref}}}" refers to namespace "{namespace}", which no '
                         "earlier action defines")

    def triggers(self, value: Any, stages: list) -> None:
        if not self.expect("triggers", value, list, "a list"):
            return
        # Only string names: a malformed name (a list, an object) is reported where
        # it stands and must not make this set unhashable.
        sources = {
            a.get("name")
            for st in stages[:1] if isinstance(st, dict) and isinstance(st.get("actions"), list)
            for a in st["actions"] if isinstance(a, dict) and isinstance(a.get("name"), str)
        }
        for i, trig in enumerate(value):
            path = f"triggers[{i}]"
            if not self.expect(path, trig, dict, "an object"):
                continue
            self.fields(path, trig, "triggers[]")
            git = trig.get("gitConfiguration")
            if git is None:
                self.add(f"{path}.gitConfiguration", "is required")
                continue
            if not self.expect(f"{path}.gitConfiguration", git, dict, "an object"):
                continue
            self.fields(f"{path}.gitConfiguration", git, "triggers[].gitConfiguration")
            src = git.get("sourceActionName")
            if src is None:
                self.add(f"{path}.gitConfiguration.sourceActionName", "is required")
            elif not self.expect(f"{path}.gitConfiguration.sourceActionName", src, str,
                                 "a string"):
                pass
            elif src not in sources:
                self.add(f"{path}.gitConfiguration.sourceActionName",
                         f'"{src}" is not a source action of the first stage')
            for kind in ("push", "pullRequest"):
                if kind not in git:
                    continue
                fpath = f"{path}.gitConfiguration.{kind}"
                if not self.expect(fpath, git[kind], list, "a list"):
                    continue
                for j, flt in enumerate(git[kind]):
                    if not self.expect(f"{fpath}[{j}]", flt, dict, "an object"):
                        continue
                    if kind == "pullRequest":
                        self._pull_request_filter(f"{fpath}[{j}]", flt)
                    self.fields(f"{fpath}[{j}]", flt, f"triggers[].gitConfiguration.{kind}[]")
                    for key in ("branches", "tags", "filePaths"):
                        if key not in flt:
                            continue
                        kpath = f"{fpath}[{j}].{key}"
                        if self.expect(kpath, flt[key], dict, "an object"):
                            self.fields(kpath, flt[key], "filter", "")
                            for side in ("includes", "excludes"):
                                if side in flt[key]:
                                    self.string_list(f"{kpath}.{side}", flt[key][side])

    def _pull_request_filter(self, path: str, flt: dict) -> None:
        """CodePipeline's pullRequest filter: 1-3 ``events`` of OPEN/UPDATED/CLOSED, no tags."""
        events = flt.get("events")
        if events is not None and (not isinstance(events, list) or not 1 <= len(events) <= 3
                                   or any(e not in ("OPEN", "UPDATED", "CLOSED")
                                          for e in events)):
            self.add(f"{path}.events", "must list 1 to 3 of OPEN, UPDATED, CLOSED")
        if "tags" in flt:
            self.add(f"{path}.tags", "pull-request filters have branches and filePaths, "
                                     "not tags")


def validate_document(doc: Any) -> list[Problem]:
    """Every problem of ``doc`` at once, in document order (errors and warnings).

    Also warns of PLAINTEXT environment variables that look like credentials.
    """
    from pipelines.secrets import credential_warnings

    problems = _Validator().run(doc)
    return problems + [Problem(path, message, "warning")
                       for path, message in credential_warnings(doc)]
