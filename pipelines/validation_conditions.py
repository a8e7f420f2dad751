"""Validation of stage conditions (``beforeEntry``, ``onSuccess``, ``onFailure``) and their
rules: a part of ``pipelines.validation``'s validator, kept in its own module for size.
The methods use the validator's ``add``/``expect``/``fields`` helpers (docs/conditions.md).
"""

from typing import Any

from pipelines import providers
from pipelines.choices import ExecutionMode

# Stage conditions (CodePipeline's BeforeEntryConditions, SuccessConditions,
# FailureConditions): the results each kind allows. docs/conditions.md says why.
CONDITION_RESULTS = {
    "beforeEntry": ("FAIL", "SKIP"),
    "onSuccess": ("ROLLBACK", "FAIL"),
    "onFailure": ("ROLLBACK", "RETRY"),
}
FAILURE_RESULTS = ("ROLLBACK", "RETRY", "FAIL")
RETRY_MODES = ("FAILED_ACTIONS", "ALL_ACTIONS")
MAX_RULES = 5
RULE_TIMEOUT_MINUTES = (5, 86400)
MAX_RULE_CONFIGURATION_KEYS = 200
MAX_RULE_CONFIGURATION_VALUE = 10000
MAX_COMMANDS = 50
MAX_COMMAND_LENGTH = 1000


class ConditionChecks:
    """Mixed into ``pipelines.validation._Validator``."""

    def stage_conditions(self, s: int, stage: dict, variables: set[str],
                         before: tuple[dict, dict], after: tuple[dict, dict],
                         mode: Any) -> None:
        """``beforeEntry``, ``onSuccess`` and ``onFailure`` of stage ``s``.

        A ``beforeEntry`` rule sees the artifacts and namespaces of earlier
        stages; an ``onSuccess``/``onFailure`` rule also those of this stage.
        """
        path = f"stages[{s}]"
        for kind in ("beforeEntry", "onSuccess", "onFailure"):
            if kind not in stage:
                continue
            kpath = f"{path}.{kind}"
            block = stage[kind]
            if not self.expect(kpath, block, dict, "an object"):
                continue
            self.fields(kpath, block, f"stages[].{kind}")
            seen = before if kind == "beforeEntry" else after
            if s == 0 and kind in ("beforeEntry", "onSuccess"):
                self.add(kpath, f"the first (Source) stage cannot have {kind} conditions: "
                         "an execution enters it when it starts, and its sources are what "
                         "later conditions check")
            results = []
            if kind == "onFailure":
                results = self.failure_block(kpath, block, first_stage=(s == 0))
            if "conditions" in block or kind != "onFailure":
                results += self.condition_list(kpath, kind, block.get("conditions"), variables,
                                               seen)
            if mode == ExecutionMode.PARALLEL.value and "ROLLBACK" in results:
                self.add(kpath, "PARALLEL pipelines have no stage rollback: a ROLLBACK result "
                         "is not allowed (use QUEUED or SUPERSEDED)")
            if s == 0 and "ROLLBACK" in results:
                self.add(kpath, "the first (Source) stage cannot be rolled back")

    def failure_block(self, path: str, block: dict, first_stage: bool) -> list[str]:
        """``onFailure.result`` and ``retryConfiguration``; returns the results used."""
        result = block.get("result")
        results: list[str] = []
        if result is None and "conditions" not in block:
            self.add(f"{path}.result", "is required when onFailure has no conditions: use "
                     + ", ".join(FAILURE_RESULTS))
        elif result is not None:
            if result not in FAILURE_RESULTS:
                self.add(f"{path}.result", f'"{result}" is not a result of onFailure: use '
                         + ", ".join(FAILURE_RESULTS))
            else:
                results.append(result)
        retry = block.get("retryConfiguration")
        conditions = block.get("conditions")
        condition_result = (conditions[0].get("result") if isinstance(conditions, list)
                            and conditions and isinstance(conditions[0], dict) else None)
        if retry is not None:
            rpath = f"{path}.retryConfiguration"
            # With conditions, the condition's RETRY uses it (docs/conditions.md).
            if result != "RETRY" and condition_result != "RETRY":
                self.add(rpath, "applies only with result RETRY")
            if self.expect(rpath, retry, dict, "an object"):
                self.fields(rpath, retry, "stages[].onFailure.retryConfiguration")
                mode = retry.get("retryMode")
                if mode is None:
                    self.add(f"{rpath}.retryMode", "is required: use " + ", ".join(RETRY_MODES))
                elif mode not in RETRY_MODES:
                    self.add(f"{rpath}.retryMode", f'"{mode}" is not a retry mode: use '
                             + ", ".join(RETRY_MODES))
        if "conditions" in block and result is not None:
            # With conditions the condition's result decides (see docs/conditions.md);
            # a second, different result beside it would be a silent contradiction.
            conditions = block["conditions"]
            first = (conditions[0] if isinstance(conditions, list) and conditions
                     and isinstance(conditions[0], dict) else {})
            if first.get("result") not in (None, result):
                self.add(f"{path}.result", f'"{result}" differs from the result of '
                         f'onFailure.conditions[0], "{first.get("result")}": with conditions, '
                         "the condition's result applies; remove one of them")
        return results

    def condition_list(self, path: str, kind: str, value: Any, variables: set[str],
                       seen: tuple[dict, dict]) -> list[str]:
        cpath = f"{path}.conditions"
        if value is None:
            self.add(cpath, "is required")
            return []
        if not self.expect(cpath, value, list, "a list"):
            return []
        if len(value) != 1:
            self.add(cpath, f"must hold exactly one condition, not {len(value)}")
        results = []
        for c, condition in enumerate(value):
            ipath = f"{cpath}[{c}]"
            if not self.expect(ipath, condition, dict, "an object"):
                continue
            self.fields(ipath, condition, "condition", f"stages[].{kind}.conditions[]")
            allowed = CONDITION_RESULTS[kind]
            result = condition.get("result")
            if result is None:
                self.add(f"{ipath}.result", "is required: use " + ", ".join(allowed))
            elif result not in allowed:
                self.add(f"{ipath}.result", f'"{result}" is not a result of a {kind} '
                         "condition: use " + ", ".join(allowed))
            else:
                results.append(result)
            rules = condition.get("rules")
            if rules is None:
                self.add(f"{ipath}.rules", "is required")
                continue
            if not self.expect(f"{ipath}.rules", rules, list, "a list"):
                continue
            if not 1 <= len(rules) <= MAX_RULES:
                self.add(f"{ipath}.rules", f"a condition has 1 to {MAX_RULES} rules, "
                         f"this one has {len(rules)}")
            names: set[str] = set()
            providers_used = []
            for r, rule in enumerate(rules):
                provider = self.rule(f"{ipath}.rules[{r}]", kind, rule, names, variables, seen)
                providers_used.append(provider)
            if result == "SKIP":
                for r, provider in enumerate(providers_used):
                    spec = providers.get_rule(provider) if provider else None
                    if provider and not (spec and spec.can_skip) and provider != "LambdaInvoke":
                        skippers = [p.provider for p in providers.all_rule_specs() if p.can_skip]
                        self.add(f"{ipath}.rules[{r}].ruleTypeId.provider",
                                 f'a SKIP condition cannot use rule "{provider}": use '
                                 + ", ".join(skippers))
        return results

    def rule(self, path: str, kind: str, rule: Any, names: set[str], variables: set[str],
             seen: tuple[dict, dict]) -> str | None:
        """One rule declaration; returns its provider (None when unusable)."""
        if not self.expect(path, rule, dict, "an object"):
            return None
        self.fields(path, rule, "rule", f"stages[].{kind}.conditions[].rules[]")
        if self.name(f"{path}.name", rule.get("name")):
            if rule["name"] in names:
                self.add(f"{path}.name", f'rule name "{rule["name"]}" is used twice in this '
                         "condition")
            names.add(rule["name"])
        produced, namespaces = seen
        for i, name in enumerate(self.artifacts(f"{path}.inputArtifacts",
                                                rule.get("inputArtifacts", []), output=False)):
            if name not in produced:
                self.add(f"{path}.inputArtifacts[{i}]",
                         f'artifact "{name}" is not produced by any action before this rule')
        config = rule.get("configuration", {})
        if config is None:
            config = {}
        if self.expect(f"{path}.configuration", config, dict, "an object"):
            if len(config) > MAX_RULE_CONFIGURATION_KEYS:
                self.add(f"{path}.configuration", f"has at most {MAX_RULE_CONFIGURATION_KEYS} "
                         f"keys, not {len(config)}")
            for key, value in config.items():
                vpath = f"{path}.configuration.{key}"
                if self.expect(vpath, value, str, "a string"):
                    if len(value) > MAX_RULE_CONFIGURATION_VALUE:
                        self.add(vpath, f"is at most {MAX_RULE_CONFIGURATION_VALUE} characters")
                    self.references(vpath, value, variables, namespaces)
        if "commands" in rule:
            commands = self.string_list(f"{path}.commands", rule["commands"])
            if not 1 <= len(rule["commands"] if isinstance(rule["commands"], list) else [1]) \
                    <= MAX_COMMANDS:
                self.add(f"{path}.commands", f"holds 1 to {MAX_COMMANDS} commands")
            for i, command in enumerate(commands):
                if len(command) > MAX_COMMAND_LENGTH:
                    self.add(f"{path}.commands[{i}]",
                             f"is at most {MAX_COMMAND_LENGTH} characters")
                self.references(f"{path}.commands[{i}]", command, variables, namespaces)
        if "timeoutInMinutes" in rule:
            t = rule["timeoutInMinutes"]
            low, high = RULE_TIMEOUT_MINUTES
            if self.expect(f"{path}.timeoutInMinutes", t, int, "a whole number") and not (
                low <= t <= high
            ):
                self.add(f"{path}.timeoutInMinutes",
                         f"must be between {low} and {high} minutes, not {t}")
        return self.rule_type(path, rule)

    def rule_type(self, path: str, rule: dict) -> str | None:
        tpath = f"{path}.ruleTypeId"
        type_id = rule.get("ruleTypeId")
        if type_id is None:
            self.add(tpath, "is required")
            return None
        if not self.expect(tpath, type_id, dict, "an object"):
            return None
        self.fields(tpath, type_id, "rule.ruleTypeId", "")
        category = type_id.get("category")
        if category != "Rule":
            self.add(f"{tpath}.category", "is required: use Rule" if category is None
                     else f'"{category}" is not a rule category: use Rule')
        owner = type_id.get("owner", "AWS")
        if owner != "AWS":
            self.add(f"{tpath}.owner", f'"{owner}" is not a rule owner: use AWS')
        version = type_id.get("version", "1")
        if str(version) != "1":
            self.add(f"{tpath}.version", f'"{version}" is not a rule version: use "1"')
        provider = type_id.get("provider")
        if provider is None:
            self.add(f"{tpath}.provider", "is required")
            return None
        if not self.expect(f"{tpath}.provider", provider, str, "a string"):
            return None
        spec = providers.get_rule(provider)
        if spec is None:
            if provider in providers.AWS_ONLY_RULES:
                self.add(f"{tpath}.provider",
                         f'rule "{provider}" exists only on AWS: it cannot be evaluated in '
                         "Conveyor (see the metrics and webhook rules)", severity="warning")
            else:
                self.add(f"{tpath}.provider", f'"{provider}" is not a rule provider: use '
                         + ", ".join(providers.rule_providers()))
            return provider
        for rel, message in spec.check(rule):
            self.add(f"{path}.{rel}" if rel else path, message)
        return provider
