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
class ProviderSpec:
    category: str
    provider: str
    check: Checker
    description: str = ""


_registry: dict[tuple[str, str], ProviderSpec] = {}


def register(category: str, provider: str, check: Checker, description: str = "") -> None:
    _registry[(category, provider)] = ProviderSpec(category, provider, check, description)


def get(category: str, provider: str) -> ProviderSpec | None:
    return _registry.get((category, provider))


def providers_for(category: str) -> list[str]:
    return sorted(p for (c, p) in _registry if c == category)


def all_specs() -> list[ProviderSpec]:
    return sorted(_registry.values(), key=lambda s: (s.category, s.provider))


# Providers that exist only on AWS: documents using them import (so that a
# pipeline exported from AWS is kept whole), but validation warns that the
# action cannot run here and starting an execution is refused.
AWS_ONLY_PROVIDERS: dict[str, frozenset[str]] = {
    "Source": frozenset(
        {"CodeCommit", "S3", "ECR", "CodeStarSourceConnection", "GitHub", "Bitbucket"}
    ),
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
