"""The registry of action providers that validation consults.

``pipelines`` imports no other app: the runners of ``executions`` (and the
Manual approval of ``approvals``) register a configuration checker here when
their app starts. A provider is identified by (category, provider); the owner
field is kept but does not select a provider.
"""

from collections.abc import Callable
from dataclasses import dataclass

# A checker receives the action's document and returns (relative path, message)
# pairs, e.g. ("configuration.BranchName", "is required") — errors — or
# (relative path, message, "warning") for a field that is kept but has no effect here.
Checker = Callable[[dict], list[tuple[str, ...]]]


@dataclass(frozen=True)
class Readiness:
    """One line of an action's migration report (``Runner.readiness``).

    ``need`` set: the action cannot start until it is met (``how`` says how to
    meet it: an admin page, a command). Only ``note`` set: it runs, and this is
    worth knowing (e.g. "build project X not found: runs buildspec.yml with
    defaults").
    """

    need: str = ""
    how: str = ""
    note: str = ""

    @property
    def blocking(self) -> bool:
        return bool(self.need)


def _ready(action_doc: dict) -> list[Readiness]:
    return []


@dataclass(frozen=True)
class ProviderSpec:
    category: str
    provider: str
    check: Checker
    description: str = ""
    # What the action still needs from this installation (may read the database).
    readiness: Callable[[dict], list[Readiness]] = _ready
    # Configuration keys holding secrets: stored sealed, shown masked (pipelines.secrets).
    secret_keys: frozenset[str] = frozenset()


_registry: dict[tuple[str, str], ProviderSpec] = {}


def register(category: str, provider: str, check: Checker, description: str = "",
             secret_keys: frozenset[str] = frozenset(),
             readiness: Callable[[dict], list[Readiness]] | None = None) -> None:
    _registry[(category, provider)] = ProviderSpec(category, provider, check, description,
                                                   readiness or _ready, frozenset(secret_keys))


def get(category: str, provider: str) -> ProviderSpec | None:
    return _registry.get((category, provider))


# Custom action types live in the database of another app (jobs), which installs a
# resolver here when it starts: (category, owner, provider, version) -> spec or None.
_custom_resolver: Callable[[str, str, str, str], ProviderSpec | None] | None = None


def set_custom_resolver(resolver: Callable[[str, str, str, str], ProviderSpec | None]) -> None:
    global _custom_resolver
    _custom_resolver = resolver


def spec_for(type_id: dict) -> ProviderSpec | None:
    """The provider of an actionTypeId: a built-in one by (category, provider), else a
    registered custom action type (owner Custom or ThirdParty) with that exact id."""
    category, provider = type_id.get("category", ""), type_id.get("provider", "")
    spec = get(category, provider)
    owner = type_id.get("owner", "Custom")
    if spec is None and _custom_resolver is not None and owner in ("Custom", "ThirdParty"):
        spec = _custom_resolver(category, owner, provider, str(type_id.get("version", "1")))
    return spec


def providers_for(category: str) -> list[str]:
    return sorted(p for (c, p) in _registry if c == category)


def all_specs() -> list[ProviderSpec]:
    return sorted(_registry.values(), key=lambda s: (s.category, s.provider))


# Providers that exist only on AWS: documents using them import (so that a
# pipeline exported from AWS is kept whole), but validation warns that the
# action cannot run here and starting an execution is refused.
AWS_ONLY_PROVIDERS: dict[str, frozenset[str]] = {
    "Source": frozenset({"S3", "ECR", "GitHub", "Bitbucket"}),
    "Build": frozenset({"Jenkins", "ECRBuildAndPublish"}),
    "Test": frozenset({"DeviceFarm", "Jenkins", "Ghost Inspector", "BlazeMeter"}),
    "Deploy": frozenset(
        {
            "CodeDeploy",
            "CodeDeployToECS",
            "CloudFormation",
            "CloudFormationStackSet",
            "CloudFormationStackInstances",
            "ECS",
            "EKS",
            "ElasticBeanstalk",
            "S3",
            "OpsWorks",
            "ServiceCatalog",
            "AppConfig",
            "AlexaSkillsKit",
            "EC2",
            "InspectorScan",
        }
    ),
    "Invoke": frozenset({"Lambda", "StepFunctions", "Snyk", "InspectorScan"}),
    "Approval": frozenset(),
}


# For each AWS-only provider, the nearest way to do the same in Conveyor (the
# migration report and docs/migrating.md say the same).
NEAREST: dict[str, str] = {
    "S3": "keep the files in a git repository and use a Git source (or a connection), "
          "or fetch the object with `aws s3 cp` in a Build Shell action",
    "ECR": "start the pipeline from the registry's webhook (POST /api/pipelines/{name}/"
           "executions/) and pull the image in a Shell action",
    "GitHub": "GitHub version 1 (OAuthToken) is deprecated on AWS too: change the action "
              "to CodeStarSourceConnection (FullRepositoryId = Owner/Repo, BranchName = "
              "Branch) and make a GitHub connection for it",
    "Bitbucket": "change the action to CodeStarSourceConnection with a Bitbucket connection",
    "CodeDeploy": "a Deploy Directory action (atomic release with rollback) on the target "
                  "machine, or a Deploy Shell action running your deployment (rsync, ssh, "
                  "`aws deploy create-deployment`)",
    "CodeDeployToECS": "a Deploy Shell action running `aws ecs update-service` or your "
                       "blue/green tool",
    "CloudFormation": "a Deploy Shell action running `aws cloudformation deploy "
                      "--template-file … --stack-name …` (or your infrastructure tool)",
    "CloudFormationStackSet": "a Deploy Shell action running `aws cloudformation "
                              "update-stack-set`",
    "CloudFormationStackInstances": "a Deploy Shell action running `aws cloudformation "
                                    "create-stack-instances`",
    "ECS": "a Deploy Shell action running `aws ecs update-service --force-new-deployment` "
           "with the image from imagedefinitions.json (or `docker compose up -d` on "
           "your own hosts)",
    "EKS": "a Deploy Shell action running `kubectl apply` or `helm upgrade`",
    "ElasticBeanstalk": "a Deploy Shell action running `eb deploy`",
    "S3#Deploy": "a Deploy Shell action running `aws s3 sync`, or a Deploy Directory action",
    "Lambda": "an Invoke Python action (a dotted path called in the worker) or an Invoke "
              "Webhook action (POST to your function's URL)",
    "StepFunctions": "an Invoke Webhook action, or a Shell action running `aws stepfunctions "
                     "start-execution`",
    "Jenkins": "an Invoke Webhook action that starts the Jenkins job and reports back "
               "through its job token",
}


def nearest(category: str, provider: str) -> str:
    """The nearest way to do what an AWS-only provider does; "" when none is known."""
    return NEAREST.get(f"{provider}#{category}") or NEAREST.get(provider, "")


# --- stage-condition rules ---------------------------------------------------
# A rule checker receives the rule's document and returns (relative path,
# message) pairs, like an action checker. The runners register the rule
# providers they evaluate (``runners.rules``); ``can_skip`` marks the
# rules a ``SKIP`` entry condition may use (CodePipeline allows Skip only with
# VariableCheck and LambdaInvoke; Conveyor's webhook rule stands for LambdaInvoke).


@dataclass(frozen=True)
class RuleSpec:
    provider: str
    check: Checker
    description: str = ""
    can_skip: bool = False


_rules: dict[str, RuleSpec] = {}


def register_rule(provider: str, check: Checker, description: str = "",
                  can_skip: bool = False) -> None:
    _rules[provider] = RuleSpec(provider, check, description, can_skip)


def get_rule(provider: str) -> RuleSpec | None:
    return _rules.get(provider)


def rule_providers() -> list[str]:
    return sorted(_rules)


def all_rule_specs() -> list[RuleSpec]:
    return [_rules[p] for p in sorted(_rules)]


# Rule providers that exist only on AWS: reported as not runnable here at the
# rule's path (a warning: the document is kept, an execution is refused).
AWS_ONLY_RULES = frozenset({"CloudWatchAlarm", "LambdaInvoke", "CodeBuild"})
