"""Which fields of CodePipeline's pipeline structure Conveyor acts on.

Every member of the API's ``PipelineDeclaration`` (botocore's model, all nested
members) is in exactly one of three classes, keyed by its path with ``[]`` for
list items:

- implemented: Conveyor acts on it (validation checks it);
- ``INERT``: AWS infrastructure Conveyor keeps (export gives it back) and has
  no use for — roles, regions, artifact stores; listed in docs/conditions.md;
- ``WARNED``: a CodePipeline feature Conveyor does not act on; validation
  warns at its path (a warning refuses to start an execution, so nobody
  believes it acts).

A field of no class (not in CodePipeline's structure at all, e.g. a typo such as
``beforeentry``) is warned at its path too. tests/pipelines/test_fields.py
walks botocore's model and fails when a member is in no class, so a field
botocore grows shows up there.
"""

INERT = frozenset({
    "roleArn",
    "artifactStore",
    "artifactStore.type",
    "artifactStore.location",
    "artifactStore.encryptionKey",
    "artifactStore.encryptionKey.id",
    "artifactStore.encryptionKey.type",
    "artifactStores",
    "version",
    "pipelineType",
    "stages[].blockers",
    "stages[].blockers[].name",
    "stages[].blockers[].type",
    "stages[].actions[].roleArn",
    "stages[].actions[].region",
    "triggers[].providerType",
    *(f"stages[].{kind}.conditions[].rules[].{field}"
      for kind in ("beforeEntry", "onSuccess", "onFailure") for field in ("roleArn", "region")),
})

# path -> why it is warned (the warning's text).
WARNED: dict[str, str] = {}

# The members Conveyor reads at each level (a path with [] for list items).
KNOWN: dict[str, frozenset[str]] = {
    "": frozenset({"name", "roleArn", "artifactStore", "artifactStores", "stages", "version",
                   "executionMode", "pipelineType", "variables", "triggers"}),
    "variables[]": frozenset({"name", "defaultValue", "description"}),
    "stages[]": frozenset({"name", "blockers", "actions", "onFailure", "onSuccess",
                           "beforeEntry"}),
    "stages[].actions[]": frozenset({
        "name", "actionTypeId", "runOrder", "configuration", "commands", "outputArtifacts",
        "inputArtifacts", "outputVariables", "roleArn", "region", "namespace",
        "timeoutInMinutes", "environmentVariables"}),
    "stages[].actions[].actionTypeId": frozenset({"category", "owner", "provider", "version"}),
    "stages[].actions[].inputArtifacts[]": frozenset({"name"}),
    "stages[].actions[].outputArtifacts[]": frozenset({"name", "files"}),
    "stages[].actions[].environmentVariables[]": frozenset({"name", "value", "type"}),
    "stages[].beforeEntry": frozenset({"conditions"}),
    "stages[].onSuccess": frozenset({"conditions"}),
    "stages[].onFailure": frozenset({"result", "retryConfiguration", "conditions"}),
    "stages[].onFailure.retryConfiguration": frozenset({"retryMode"}),
    "condition": frozenset({"result", "rules"}),
    "rule": frozenset({"name", "ruleTypeId", "configuration", "commands", "inputArtifacts",
                       "roleArn", "region", "timeoutInMinutes"}),
    "rule.ruleTypeId": frozenset({"category", "owner", "provider", "version"}),
    "triggers[]": frozenset({"providerType", "gitConfiguration"}),
    "triggers[].gitConfiguration": frozenset({"sourceActionName", "push", "pullRequest"}),
    "triggers[].gitConfiguration.push[]": frozenset({"tags", "branches", "filePaths"}),
    "triggers[].gitConfiguration.pullRequest[]": frozenset({"events", "branches",
                                                            "filePaths"}),
    "filter": frozenset({"includes", "excludes"}),
}
