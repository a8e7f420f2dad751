"""Validation: every rule, with its exact message and JSON path.

Each case below is one rule: a valid document is changed in one place and the
test asserts the complete list of errors, so a rule that stops firing, fires at
the wrong path or fires twice fails its test.
"""

import copy

import pytest

from pipelines import providers
from pipelines.validation import validate_document
from tests.factories import action, definition

pytestmark = pytest.mark.usefixtures("known_providers")


def valid() -> dict:
    return definition(
        variables=[{"name": "Env", "defaultValue": "prod", "description": "target"}],
        triggers=[{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
            "sourceActionName": "Checkout",
            "push": [{"branches": {"includes": ["main"], "excludes": ["wip/*"]}}]}}],
        stages=[
            ("Source", [action("Checkout", "Source", "Git", namespace="SourceVariables",
                               configuration={"RepositoryUrl": "/srv/app.git"},
                               outputArtifacts=[{"name": "Src"}])]),
            ("Build", [action("Compile", commands=["make"], inputArtifacts=[{"name": "Src"}],
                              outputArtifacts=[{"name": "App", "files": ["dist/**"]}],
                              namespace="BuildVariables",
                              environmentVariables=[{"name": "COMMIT",
                                                     "value": "#{SourceVariables.CommitId}"}]),
                       action("Check", "Test", commands=["test -f app"], runOrder=2,
                              inputArtifacts=[{"name": "App"}], timeoutInMinutes=10)]),
            ("Deploy", [action("Release", "Deploy", "Shell", inputArtifacts=[{"name": "App"}],
                               configuration={"Target": "#{variables.Env}",
                                              "Tag": "#{BuildVariables.Version}",
                                              "Run": "#{codepipeline.PipelineExecutionId}"})]),
        ],
    )


def errors(doc) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in validate_document(doc) if p.severity == "error"]


def test_the_valid_document_of_these_tests_has_no_problem():
    assert validate_document(valid()) == []


def changed(edit):
    doc = valid()
    edit(doc)
    return doc


def act(doc, s, a=0):
    return doc["stages"][s]["actions"][a]


def set_(path_fn, key, value):
    def edit(doc):
        path_fn(doc)[key] = value
    return edit


STAGES_51 = [{"name": f"S{i}", "actions": [action("A", "Build", "Shell")]} for i in range(51)]

ENV_REF = ("stages[2].actions[0].configuration.Target",
           '"#{variables.Env}" refers to pipeline variable "Env", which is not declared in '
           "variables")

# A broken declaration of Env also leaves its reference unresolved.
RULES = [
    # --- the document and its top-level fields
    ("the_definition_must_be_an_object", lambda d: None, ["x"],
     [("", "the definition must be an object, not a list")]),
    ("a_pipeline_needs_a_name", set_(lambda d: d, "name", None), None,
     [("name", "is required")]),
    ("a_pipeline_name_is_a_string", set_(lambda d: d, "name", 7), None,
     [("name", "must be a string, not a number")]),
    ("a_pipeline_name_uses_only_url_safe_characters", set_(lambda d: d, "name", "my app"), None,
     [("name", '"my app" is not a valid name: use letters, digits and . @ _ - only, '
               "1 to 100 characters")]),
    ("a_pipeline_name_has_at_most_100_characters", set_(lambda d: d, "name", "a" * 101), None,
     [("name", f'"{"a" * 101}" is not a valid name: use letters, digits and . @ _ - only, '
               "1 to 100 characters")]),
    ("the_execution_mode_is_one_of_three", set_(lambda d: d, "executionMode", "SERIAL"), None,
     [("executionMode", '"SERIAL" is not an execution mode: use SUPERSEDED, QUEUED, PARALLEL')]),
    ("the_pipeline_type_is_v1_or_v2", set_(lambda d: d, "pipelineType", "V3"), None,
     [("pipelineType", '"V3" is not a pipeline type: use V1 or V2')]),
    ("stages_are_required", lambda d: d.pop("stages"), None, [("stages", "is required")]),
    ("stages_are_a_list", set_(lambda d: d, "stages", {"Source": []}), None,
     [("stages", "must be a list, not an object")]),
    ("a_pipeline_needs_at_least_two_stages", lambda d: d["stages"].pop() and d["stages"].pop(),
     None, [("stages", "a pipeline needs at least 2 stages, this one has 1")]),
    ("a_pipeline_has_at_most_50_stages",
     lambda d: d["stages"].extend(copy.deepcopy(STAGES_51[:48])), None,
     [("stages", "a pipeline has at most 50 stages, this one has 51")]),
    # --- variables
    ("variables_are_a_list", set_(lambda d: d, "variables", {"Env": "prod"}), None,
     [("variables", "must be a list, not an object"), ENV_REF]),
    ("a_variable_is_an_object", set_(lambda d: d, "variables", ["Env"]), None,
     [("variables[0]", "must be an object, not a string"), ENV_REF]),
    ("a_variable_name_is_valid", set_(lambda d: d["variables"][0], "name", "E.nv"), None,
     [("variables[0].name", '"E.nv" is not a valid name: use letters, digits and @ _ - only, '
                            "1 to 128 characters"), ENV_REF]),
    ("a_variable_is_declared_once",
     lambda d: d["variables"].append({"name": "Env"}), None,
     [("variables[1].name", 'variable "Env" is declared twice')]),
    ("a_variable_default_is_a_string", set_(lambda d: d["variables"][0], "defaultValue", 3),
     None, [("variables[0].defaultValue", "must be a string, not a number")]),
    # --- stages
    ("a_stage_is_an_object", lambda d: d["stages"].append("Deploy2"), None,
     [("stages[3]", "must be an object, not a string")]),
    ("a_stage_needs_a_name", lambda d: d["stages"][1].pop("name"), None,
     [("stages[1].name", "is required")]),
    ("a_stage_name_uses_only_url_safe_characters", set_(lambda d: d["stages"][1], "name",
                                                        "Build/Test"), None,
     [("stages[1].name", '"Build/Test" is not a valid name: use letters, digits and . @ _ - '
                         "only, 1 to 100 characters")]),
    ("stage_names_are_unique", set_(lambda d: d["stages"][2], "name", "Build"), None,
     [("stages[2].name", 'stage name "Build" is used twice')]),
    ("a_stage_needs_its_actions", lambda d: d["stages"][2].pop("actions"), None,
     [("stages[2].actions", "is required")]),
    ("a_stage_needs_at_least_one_action", set_(lambda d: d["stages"][2], "actions", []), None,
     [("stages[2].actions", "a stage needs at least one action")]),
    ("a_stage_has_at_most_50_actions", set_(lambda d: d["stages"][2], "actions", [
        action(f"A{i}", "Deploy", "Shell") for i in range(51)]), None,
     [("stages[2].actions", "a stage has at most 50 actions, this one has 51")]),
    # --- actions
    ("an_action_is_an_object", lambda d: d["stages"][2]["actions"].append([]), None,
     [("stages[2].actions[1]", "must be an object, not a list")]),
    ("an_action_needs_a_name", lambda d: act(d, 2).pop("name"), None,
     [("stages[2].actions[0].name", "is required")]),
    ("an_action_name_uses_only_url_safe_characters", set_(lambda d: act(d, 2), "name",
                                                          "Release!"), None,
     [("stages[2].actions[0].name", '"Release!" is not a valid name: use letters, digits and '
                                    ". @ _ - only, 1 to 100 characters")]),
    ("action_names_are_unique_within_a_stage", set_(lambda d: act(d, 1, 1), "name", "Compile"),
     None, [("stages[1].actions[1].name", 'action name "Compile" is used twice in this stage')]),
    ("run_order_is_a_whole_number", set_(lambda d: act(d, 2), "runOrder", "1"), None,
     [("stages[2].actions[0].runOrder", "must be a whole number, not a string")]),
    ("run_order_is_not_a_boolean", set_(lambda d: act(d, 2), "runOrder", True), None,
     [("stages[2].actions[0].runOrder", "must be a whole number, not a boolean")]),
    ("run_order_is_at_least_1", set_(lambda d: act(d, 2), "runOrder", 0), None,
     [("stages[2].actions[0].runOrder", "must be between 1 and 999, not 0")]),
    ("run_order_is_at_most_999", set_(lambda d: act(d, 2), "runOrder", 1000), None,
     [("stages[2].actions[0].runOrder", "must be between 1 and 999, not 1000")]),
    # --- action types
    ("an_action_type_is_required", lambda d: act(d, 2).pop("actionTypeId"), None,
     [("stages[2].actions[0].actionTypeId", "is required")]),
    ("an_action_type_is_an_object", set_(lambda d: act(d, 2), "actionTypeId", "Deploy/Shell"),
     None, [("stages[2].actions[0].actionTypeId", "must be an object, not a string")]),
    ("a_category_is_required", lambda d: act(d, 2)["actionTypeId"].pop("category"), None,
     [("stages[2].actions[0].actionTypeId.category", "is required")]),
    ("the_category_is_one_of_seven", set_(lambda d: act(d, 2)["actionTypeId"], "category",
                                        "Release"), None,
     [("stages[2].actions[0].actionTypeId.category",
       '"Release" is not a category: use Source, Build, Test, Deploy, Approval, Invoke, '
       "Compute")]),
    ("the_owner_is_one_of_three", set_(lambda d: act(d, 2)["actionTypeId"], "owner", "Me"),
     None, [("stages[2].actions[0].actionTypeId.owner",
             '"Me" is not an owner: use AWS, ThirdParty, Custom')]),
    ("the_version_is_a_short_string", set_(lambda d: act(d, 2)["actionTypeId"], "version",
                                           "1.0.0.0.0.0"), None,
     [("stages[2].actions[0].actionTypeId.version",
       'must be a short version string such as "1"')]),
    ("the_first_stage_holds_only_source_actions",
     lambda d: d["stages"][0]["actions"].append(action("Early", "Build", "Shell")), None,
     [("stages[0].actions[1].actionTypeId.category",
       "the first stage holds only Source actions, this one is Build")]),
    ("source_actions_belong_in_the_first_stage_only",
     lambda d: d["stages"][2]["actions"].append(action("Late", "Source", "Git")), None,
     [("stages[2].actions[1].actionTypeId.category",
       "Source actions belong in the first stage only")]),
    ("a_provider_is_required", lambda d: act(d, 2)["actionTypeId"].pop("provider"), None,
     [("stages[2].actions[0].actionTypeId.provider", "is required")]),
    ("a_provider_is_a_string", set_(lambda d: act(d, 2)["actionTypeId"], "provider", ["Shell"]),
     None, [("stages[2].actions[0].actionTypeId.provider", "must be a string, not a list")]),
    ("the_provider_must_exist_for_the_category",
     set_(lambda d: act(d, 2)["actionTypeId"], "provider", "Git"), None,
     [("stages[2].actions[0].actionTypeId.provider",
       '"Git" is not a provider of category Deploy: use Directory, Shell')]),
    ("the_provider_checks_its_configuration",
     set_(lambda d: act(d, 2), "configuration", {"Forbidden": "yes"}), None,
     [("stages[2].actions[0].configuration.Forbidden", "is not a setting of this provider")]),
    # --- artifacts
    ("artifact_lists_are_lists", set_(lambda d: act(d, 2), "inputArtifacts", "App"), None,
     [("stages[2].actions[0].inputArtifacts", "must be a list, not a string")]),
    ("an_artifact_is_an_object", set_(lambda d: act(d, 2), "inputArtifacts", ["App"]), None,
     [("stages[2].actions[0].inputArtifacts[0]", "must be an object, not a string")]),
    ("an_artifact_needs_a_name", set_(lambda d: act(d, 1), "outputArtifacts", [{}]), None,
     [("stages[1].actions[0].outputArtifacts[0].name", "is required"),
      ("stages[1].actions[1].inputArtifacts[0]",
       'artifact "App" is not produced by any earlier action'),
      ("stages[2].actions[0].inputArtifacts[0]",
       'artifact "App" is not produced by any earlier action')]),
    ("an_artifact_name_uses_letters_digits_underscore_and_dash",
     set_(lambda d: act(d, 0), "outputArtifacts", [{"name": "Src.zip"}]), None,
     [("stages[0].actions[0].outputArtifacts[0].name", '"Src.zip" is not a valid name: use '
       "letters, digits, _ and - only, 1 to 100 characters"),
      ("stages[1].actions[0].inputArtifacts[0]",
       'artifact "Src" is not produced by any earlier action')]),
    ("output_files_are_a_list_of_strings",
     set_(lambda d: act(d, 1)["outputArtifacts"][0], "files", "dist/**"), None,
     [("stages[1].actions[0].outputArtifacts[0].files", "must be a list, not a string")]),
    ("an_output_artifact_name_is_unique_in_the_pipeline",
     set_(lambda d: act(d, 2), "outputArtifacts", [{"name": "Src"}]), None,
     [("stages[2].actions[0].outputArtifacts[0].name",
       'artifact "Src" is already produced by stages[0].actions[0]')]),
    ("an_input_artifact_is_produced_by_an_earlier_stage",
     set_(lambda d: act(d, 2), "inputArtifacts", [{"name": "BuildOutput"}]), None,
     [("stages[2].actions[0].inputArtifacts[0]",
       'artifact "BuildOutput" is not produced by any earlier action')]),
    ("an_input_artifact_of_the_same_run_order_is_not_produced_earlier",
     set_(lambda d: act(d, 1, 1), "runOrder", 1), None,
     [("stages[1].actions[1].inputArtifacts[0]",
       'artifact "App" is not produced by any earlier action')]),
    ("an_input_artifact_of_a_later_stage_is_not_produced_earlier",
     set_(lambda d: act(d, 1), "inputArtifacts", [{"name": "Src"}, {"name": "Report"}]), None,
     [("stages[1].actions[0].inputArtifacts[1]",
       'artifact "Report" is not produced by any earlier action')]),
    # --- configuration, commands, environment, timeout
    ("configuration_is_an_object", set_(lambda d: act(d, 2), "configuration", ["a"]), None,
     [("stages[2].actions[0].configuration", "must be an object, not a list")]),
    ("configuration_values_are_strings",
     set_(lambda d: act(d, 2)["configuration"], "Retries", 3), None,
     [("stages[2].actions[0].configuration.Retries", "must be a string, not a number")]),
    ("commands_are_a_list", set_(lambda d: act(d, 1), "commands", "make"), None,
     [("stages[1].actions[0].commands", "must be a list, not a string")]),
    ("commands_are_strings", set_(lambda d: act(d, 1), "commands", ["make", ["test"]]), None,
     [("stages[1].actions[0].commands[1]", "must be a string, not a list")]),
    ("environment_variables_are_a_list",
     set_(lambda d: act(d, 1), "environmentVariables", {"CI": "1"}), None,
     [("stages[1].actions[0].environmentVariables", "must be a list, not an object")]),
    ("an_environment_variable_is_an_object",
     set_(lambda d: act(d, 1), "environmentVariables", ["CI=1"]), None,
     [("stages[1].actions[0].environmentVariables[0]", "must be an object, not a string")]),
    ("an_environment_variable_needs_a_name",
     set_(lambda d: act(d, 1), "environmentVariables", [{"value": "1"}]), None,
     [("stages[1].actions[0].environmentVariables[0].name", "is required")]),
    ("an_environment_variable_name_is_a_string",
     set_(lambda d: act(d, 1), "environmentVariables", [{"name": 1, "value": "1"}]), None,
     [("stages[1].actions[0].environmentVariables[0].name", "must be a string, not a number")]),
    ("an_environment_variable_name_is_a_shell_name",
     set_(lambda d: act(d, 1), "environmentVariables", [{"name": "1X", "value": "1"}]), None,
     [("stages[1].actions[0].environmentVariables[0].name",
       '"1X" is not an environment variable name')]),
    ("an_environment_variable_is_set_once",
     set_(lambda d: act(d, 1), "environmentVariables", [{"name": "CI", "value": "1"},
                                                       {"name": "CI", "value": "2"}]), None,
     [("stages[1].actions[0].environmentVariables[1].name",
       'environment variable "CI" is set twice')]),
    ("an_environment_variable_needs_a_value",
     set_(lambda d: act(d, 1), "environmentVariables", [{"name": "CI"}]), None,
     [("stages[1].actions[0].environmentVariables[0].value", "is required")]),
    ("an_environment_variable_type_is_known",
     set_(lambda d: act(d, 1), "environmentVariables", [{"name": "CI", "value": "1",
                                                        "type": "PARAMETER_STORE"}]), None,
     [("stages[1].actions[0].environmentVariables[0].type",
       '"PARAMETER_STORE" is not a type: use PLAINTEXT, SECRETS_MANAGER')]),
    ("a_timeout_is_a_whole_number", set_(lambda d: act(d, 2), "timeoutInMinutes", 1.5), None,
     [("stages[2].actions[0].timeoutInMinutes", "must be a whole number, not a number")]),
    ("a_timeout_is_at_most_60_days", set_(lambda d: act(d, 2), "timeoutInMinutes", 86401),
     None, [("stages[2].actions[0].timeoutInMinutes",
             "must be between 1 and 86400 minutes, not 86401")]),
    ("a_timeout_is_at_least_a_minute", set_(lambda d: act(d, 2), "timeoutInMinutes", 0), None,
     [("stages[2].actions[0].timeoutInMinutes", "must be between 1 and 86400 minutes, not 0")]),
    # --- namespaces and references
    ("a_namespace_is_a_string", set_(lambda d: act(d, 2), "namespace", None), None,
     [("stages[2].actions[0].namespace", "must be a string, not null")]),
    ("a_namespace_uses_letters_digits_at_underscore_and_dash",
     set_(lambda d: act(d, 2), "namespace", "Deploy.Vars"), None,
     [("stages[2].actions[0].namespace", '"Deploy.Vars" is not a valid name: use letters, '
                                        "digits and @ _ - only")]),
    ("the_codepipeline_namespace_is_reserved",
     set_(lambda d: act(d, 2), "namespace", "codepipeline"), None,
     [("stages[2].actions[0].namespace", '"codepipeline" is reserved')]),
    ("the_variables_namespace_is_reserved",
     set_(lambda d: act(d, 2), "namespace", "variables"), None,
     [("stages[2].actions[0].namespace", '"variables" is reserved')]),
    ("namespaces_are_unique", set_(lambda d: act(d, 2), "namespace", "SourceVariables"), None,
     [("stages[2].actions[0].namespace",
       'namespace "SourceVariables" is already used by stages[0].actions[0]')]),
    ("a_reference_names_a_namespace_and_a_variable",
     set_(lambda d: act(d, 2)["configuration"], "Target", "#{Env}"), None,
     [("stages[2].actions[0].configuration.Target",
       '"#{Env}" is not a variable reference: use #{Namespace.Variable}')]),
    ("a_pipeline_variable_reference_needs_the_variable",
     set_(lambda d: act(d, 2)["configuration"], "Target", "#{variables.Region}"), None,
     [("stages[2].actions[0].configuration.Target", '"#{variables.Region}" refers to pipeline '
       'variable "Region", which is not declared in variables')]),
    ("a_codepipeline_reference_names_a_known_variable",
     set_(lambda d: act(d, 2)["configuration"], "Run", "#{codepipeline.ExecutionId}"), None,
     [("stages[2].actions[0].configuration.Run", '"#{codepipeline.ExecutionId}" is not a '
       "codepipeline variable: use PipelineExecutionId, PipelineName, PipelineVersion")]),
    ("a_namespace_reference_resolves_to_an_earlier_action",
     set_(lambda d: act(d, 1)["environmentVariables"][0], "value", "#{BuildVariables.Tag}"),
     None, [("stages[1].actions[0].environmentVariables[0].value", '"#{BuildVariables.Tag}" '
             'refers to namespace "BuildVariables", which no earlier action defines')]),
    ("a_reference_in_a_command_is_checked",
     set_(lambda d: act(d, 1), "commands", ["make VERSION=#{Later.Version}"]), None,
     [("stages[1].actions[0].commands[0]", '"#{Later.Version}" refers to namespace "Later", '
       "which no earlier action defines")]),
    # --- triggers
    ("triggers_are_a_list", set_(lambda d: d, "triggers", {}), None,
     [("triggers", "must be a list, not an object")]),
    ("a_trigger_is_an_object", set_(lambda d: d, "triggers", ["push"]), None,
     [("triggers[0]", "must be an object, not a string")]),
    ("a_trigger_needs_a_git_configuration", set_(lambda d: d, "triggers", [{}]), None,
     [("triggers[0].gitConfiguration", "is required")]),
    ("a_git_configuration_is_an_object",
     set_(lambda d: d["triggers"][0], "gitConfiguration", "main"), None,
     [("triggers[0].gitConfiguration", "must be an object, not a string")]),
    ("a_trigger_names_its_source_action",
     lambda d: d["triggers"][0]["gitConfiguration"].pop("sourceActionName"), None,
     [("triggers[0].gitConfiguration.sourceActionName", "is required")]),
    ("a_trigger_source_action_name_is_a_string",
     set_(lambda d: d["triggers"][0]["gitConfiguration"], "sourceActionName", ["Checkout"]),
     None, [("triggers[0].gitConfiguration.sourceActionName", "must be a string, not a list")]),
    ("a_trigger_names_a_source_action_of_the_first_stage",
     set_(lambda d: d["triggers"][0]["gitConfiguration"], "sourceActionName", "Compile"), None,
     [("triggers[0].gitConfiguration.sourceActionName",
       '"Compile" is not a source action of the first stage')]),
    ("trigger_filters_are_a_list",
     set_(lambda d: d["triggers"][0]["gitConfiguration"], "push", {"branches": {}}), None,
     [("triggers[0].gitConfiguration.push", "must be a list, not an object")]),
    ("a_trigger_filter_is_an_object",
     set_(lambda d: d["triggers"][0]["gitConfiguration"], "pullRequest", ["main"]), None,
     [("triggers[0].gitConfiguration.pullRequest[0]", "must be an object, not a string")]),
    ("a_branch_filter_is_an_object",
     set_(lambda d: d["triggers"][0]["gitConfiguration"]["push"][0], "branches", ["main"]),
     None, [("triggers[0].gitConfiguration.push[0].branches", "must be an object, not a list")]),
    ("filter_globs_are_strings",
     set_(lambda d: d["triggers"][0]["gitConfiguration"]["push"][0]["branches"], "includes",
          ["main", 7]), None,
     [("triggers[0].gitConfiguration.push[0].branches.includes[1]",
       "must be a string, not a number")]),
]


@pytest.mark.parametrize(("rule", "edit", "document", "expected"), RULES,
                         ids=[r[0] for r in RULES])
def test_each_rule_reports_its_exact_message_at_its_path(rule, edit, document, expected):
    doc = document if document is not None else changed(edit)
    assert errors(doc) == expected


def test_the_rule_table_covers_every_rule_once():
    assert len({r[0] for r in RULES}) == len(RULES)


def test_every_problem_is_reported_at_once_in_document_order():
    doc = valid()
    doc["name"] = "bad name"
    act(doc, 1)["runOrder"] = 0
    act(doc, 2)["inputArtifacts"] = [{"name": "Nothing"}]
    assert [path for path, _ in errors(doc)] == [
        "name", "stages[1].actions[0].runOrder", "stages[2].actions[0].inputArtifacts[0]"]


def test_an_input_from_a_lower_run_order_of_the_same_stage_is_accepted():
    assert errors(valid()) == []
    doc = valid()
    assert act(doc, 1, 1)["runOrder"] == 2 and act(doc, 1, 1)["inputArtifacts"] == [
        {"name": "App"}]


def test_a_namespace_of_a_lower_run_order_in_the_same_stage_resolves():
    doc = valid()
    act(doc, 1, 1)["commands"] = ["echo #{BuildVariables.Version}"]
    assert errors(doc) == []


def test_an_aws_only_provider_is_a_warning_at_its_path():
    doc = valid()
    act(doc, 2)["actionTypeId"].update(owner="AWS", provider="CodeDeploy")
    act(doc, 2)["configuration"] = {}
    problems = validate_document(doc)
    assert [(p.path, p.message, p.severity) for p in problems] == [
        ("stages[2].actions[0].actionTypeId.provider",
         'provider "CodeDeploy" exists only on AWS: this action cannot run in Conveyor',
         "warning")]


def test_a_category_without_any_provider_says_so():
    doc = valid()
    doc["stages"][2]["actions"] = [action("Call", "Invoke", "Lambda2")]
    providers._registry.pop(("Invoke", "Webhook"))
    assert errors(doc) == [("stages[2].actions[0].actionTypeId.provider",
                            '"Lambda2" is not a provider of category Invoke: no provider of '
                            "this category is installed")]


def test_unknown_fields_are_kept_and_not_reported():
    doc = valid()
    doc["roleArn"] = "arn:aws:iam::1:role/x"
    doc["artifactStore"] = {"type": "S3", "location": "bucket"}
    act(doc, 2)["region"] = "eu-west-1"
    doc["stages"][2]["onFailure"] = {"result": "ROLLBACK"}
    assert validate_document(doc) == []


def test_a_number_json_cannot_hold_is_refused_where_it_stands():
    doc = definition()
    doc["artifactStore"] = {"type": "S3", "size": float("inf")}
    assert ("artifactStore.size", "inf is not a number JSON allows") in errors(doc)
