"""Operations on definitions, over ``pipelines.services``."""

from django.db import transaction
from django.db.models import OuterRef, Subquery

from awsapi import errors
from awsapi.operations.base import (
    NAME,
    epoch,
    field_int,
    field_list,
    field_object,
    field_string,
    operation,
    page_token_dump,
    page_token_load,
    pipeline_arn,
    pipeline_named,
    pipeline_not_found,
)
from pipelines import providers
from pipelines.documents import as_declared_by_aws, pipeline_type
from pipelines.models import Pipeline, PipelineVersion
from pipelines.services import (
    DefinitionInvalid,
    PipelineNotFound,
    pipeline_delete,
    pipeline_export,
    pipeline_save,
    resource_tags_set,
)
from pipelines.validation import errors as error_problems
from pipelines.webhooks import tag_problems
from teams.access import pipeline_allows, pipelines_visible
from teams.choices import Act

LIST_PIPELINES_DEFAULT = 100
_TOKEN_SALT = "awsapi.ListPipelines.nextToken"


def _invalid_structure(exc: DefinitionInvalid) -> errors.AwsError:
    problems = error_problems(exc.problems) or exc.problems
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return errors.AwsError("InvalidStructureException",
                           f"The pipeline definition has {count}: "
                           + "; ".join(str(p) for p in problems))


def _exported(pipeline: Pipeline) -> dict:
    return as_declared_by_aws(pipeline_export(pipeline=pipeline)["pipeline"])


def _declaration(body: dict) -> dict:
    document = field_object(body, "pipeline", required=True)
    field_string(document, "name", required=True, pattern=NAME, max_length=100)
    return document


@operation("CreatePipeline", act=Act.OWN)
def create_pipeline(caller, body: dict) -> dict:
    document = _declaration(body)
    tags = field_list(body, "tags", max_length=50)
    problems = tag_problems(tags)
    if problems:
        raise errors.AwsError("InvalidTagsException", "; ".join(str(p) for p in problems))
    try:
        # One transaction: a pipeline is never left created without its tags.
        with transaction.atomic():
            result = pipeline_save(document=document, user=caller.user, create=True)
            if tags:
                resource_tags_set(resource=result.pipeline, tags=tags)
    except DefinitionInvalid as exc:
        # pipeline_save refuses an existing name with a single problem at "name",
        # after the document itself validated; AWS has its own exception for it.
        problems = error_problems(exc.problems)
        if (len(problems) == 1 and problems[0].path == "name"
                and Pipeline.objects.filter(name=document["name"]).exists()):
            raise errors.AwsError(
                "PipelineNameInUseException",
                f"A pipeline with the name '{document['name']}' already exists.",
            ) from None
        raise _invalid_structure(exc) from None
    answer = {"pipeline": _exported(result.pipeline)}
    if tags:
        answer["tags"] = [{"key": k, "value": v} for k, v in sorted(result.pipeline.tags.items())]
    return answer


@operation("GetPipeline", act=Act.VIEW)
def get_pipeline(caller, body: dict) -> dict:
    name = field_string(body, "name", required=True, pattern=NAME, max_length=100)
    version = field_int(body, "version", minimum=1)
    pipeline = pipeline_named(name)
    try:
        exported = pipeline_export(pipeline=pipeline, version=version)
    except PipelineVersion.DoesNotExist:
        raise errors.AwsError(
            "PipelineVersionNotFoundException",
            f"Pipeline '{name}' has no version {version}: its versions are 1 to "
            f"{pipeline.version}.",
        ) from None
    return {
        "pipeline": as_declared_by_aws(exported["pipeline"]),
        "metadata": {
            "pipelineArn": pipeline_arn(caller, pipeline.name),
            "created": epoch(exported["metadata"]["created"]),
            "updated": epoch(exported["metadata"]["updated"]),
        },
    }


@operation("UpdatePipeline", act=Act.OWN)
def update_pipeline(caller, body: dict) -> dict:
    document = _declaration(body)
    pipeline_named(document["name"])     # visible (else not found) and owned
    try:
        result = pipeline_save(document=document, user=caller.user, create=False)
    except PipelineNotFound:
        raise pipeline_not_found(document["name"]) from None
    except DefinitionInvalid as exc:
        raise _invalid_structure(exc) from None
    return {"pipeline": _exported(result.pipeline)}


@operation("DeletePipeline", act=Act.OWN)
def delete_pipeline(caller, body: dict) -> dict:
    # As on AWS, deleting a pipeline that does not exist succeeds: the model
    # declares no PipelineNotFoundException for DeletePipeline.
    name = field_string(body, "name", required=True, pattern=NAME, max_length=100)
    pipeline = Pipeline.objects.filter(name=name).first()
    if pipeline is not None and pipeline_allows(caller.user, pipeline, Act.VIEW):
        pipeline_delete(pipeline=pipeline_named(name), user=caller.user)
    return {}


@operation("ListPipelines", act=Act.VIEW)
def list_pipelines(caller, body: dict) -> dict:
    """Pipelines by name; ``nextToken`` is the signed name of the last one sent."""
    limit = field_int(body, "maxResults", minimum=1, maximum=1000) or LIST_PIPELINES_DEFAULT
    token = field_string(body, "nextToken", max_length=2048)
    pipelines = pipelines_visible(caller.user).order_by("name").annotate(
        version_created_at=Subquery(
            PipelineVersion.objects.filter(pipeline=OuterRef("pk"), number=OuterRef("version"))
            .values("created_at")[:1]
        )
    )
    after = page_token_load(token, salt=_TOKEN_SALT, operation="ListPipelines")
    if after is not None:
        pipelines = pipelines.filter(name__gt=after)
    page = list(pipelines[: limit + 1])
    answer = {
        "pipelines": [
            {
                "name": p.name,
                "version": p.version,
                "pipelineType": pipeline_type(p.document),
                "executionMode": p.execution_mode,
                "created": epoch(p.created_at),
                "updated": epoch(p.version_created_at or p.updated_at),
            }
            for p in page[:limit]
        ]
    }
    if len(page) > limit:
        answer["nextToken"] = page_token_dump(page[limit - 1].name, salt=_TOKEN_SALT)
    return answer


# How many artifacts an action of each category takes and makes, as CodePipeline
# publishes it per category; a provider may declare its own
# (``input_artifacts``/``output_artifacts`` as (minimum, maximum)).
_ARTIFACTS_BY_CATEGORY = {
    "Source": ((0, 0), (1, 1)),
    "Build": ((1, 5), (0, 5)),
    "Test": ((1, 5), (0, 5)),
    "Deploy": ((1, 5), (0, 0)),
    "Approval": ((0, 0), (0, 0)),
    "Invoke": ((0, 5), (0, 5)),
}
CONVEYOR_OWNER = "Custom"


def _artifact_details(spec, side: str, default: tuple[int, int]) -> dict:
    minimum, maximum = getattr(spec, f"{side}_artifacts", None) or default
    return {"minimumCount": minimum, "maximumCount": maximum}


@operation("ListActionTypes", act=Act.VIEW)
def list_action_types(caller, body: dict) -> dict:
    """The registered custom action types (docs/job-workers.md), then the providers that
    can run here (the registry), never the AWS-only ones.

    Conveyor's providers are its own, so their owner is ``Custom``; the region
    filter is accepted and has nothing to filter. All types fit in one answer,
    so no ``nextToken`` is ever given out.
    """
    owner = field_string(body, "actionOwnerFilter")
    if owner is not None and owner not in ("AWS", "ThirdParty", "Custom"):
        raise errors.validation(
            f"1 validation error detected: Value '{owner}' at 'actionOwnerFilter' failed to "
            "satisfy constraint: Member must satisfy enum value set: [AWS, ThirdParty, Custom]"
        )
    field_string(body, "regionFilter")
    if field_string(body, "nextToken") is not None:
        raise errors.AwsError("InvalidNextTokenException",
                              "The nextToken was not returned by ListActionTypes.")
    from awsapi.operations.jobs import custom_action_types

    types = custom_action_types(owner)
    if owner not in (None, CONVEYOR_OWNER):
        return {"actionTypes": types}
    for spec in providers.all_specs():
        inputs, outputs = _ARTIFACTS_BY_CATEGORY.get(spec.category, ((0, 5), (0, 5)))
        action_type = {
            "id": {"category": spec.category, "owner": CONVEYOR_OWNER,
                   "provider": spec.provider, "version": "1"},
            "settings": dict(getattr(spec, "settings", None) or {}),
            "inputArtifactDetails": _artifact_details(spec, "input", inputs),
            "outputArtifactDetails": _artifact_details(spec, "output", outputs),
        }
        properties = getattr(spec, "configuration_properties", None)
        if properties:
            action_type["actionConfigurationProperties"] = list(properties)
        types.append(action_type)
    return {"actionTypes": types}  # custom types (jobs) first, then the built-in ones


@operation("ListRuleTypes", act=Act.VIEW)
def list_rule_types(caller, body: dict) -> dict:
    """The stage-condition rule providers that can be evaluated here (``runners.rules``),
    never the AWS-only ones (CloudWatchAlarm, LambdaInvoke, CodeBuild). Rules' owner is
    always ``AWS`` (the API's only rule owner); the region filter has nothing to filter."""
    from runners import rules

    owner = field_string(body, "ruleOwnerFilter")
    if owner is not None and owner != "AWS":
        raise errors.validation(
            f"1 validation error detected: Value '{owner}' at 'ruleOwnerFilter' failed to "
            "satisfy constraint: Member must satisfy enum value set: [AWS]")
    field_string(body, "regionFilter")
    types = []
    for name in rules.registered():
        provider = rules.get(name)
        types.append({
            "id": {"category": "Rule", "owner": "AWS", "provider": name, "version": "1"},
            "ruleConfigurationProperties": [
                {"name": key, "required": key in provider.required, "key": False,
                 "secret": key == "Secret", "type": "String"}
                for key in provider.allowed],
            "inputArtifactDetails": {"minimumCount": 0,
                                     "maximumCount": 10 if name == "Commands" else 0},
        })
    return {"ruleTypes": types}
