"""Tag and webhook operations, over ``pipelines.services``.

ARNs are built as the other operations build them: a pipeline is
``arn:aws:codepipeline:<region>:<account>:<name>``, a webhook
``arn:aws:codepipeline:<region>:<account>:webhook:<name>``. The region of an
ARN is not checked (Conveyor has one), the account is.
"""

import re

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from awsapi import errors
from awsapi.operations.base import (
    NAME,
    account_id,
    compact,
    epoch,
    field_int,
    field_list,
    field_object,
    field_string,
    operation,
    page_token_dump,
    page_token_load,
    pipeline_checked,
    pipeline_named,
    pipeline_not_found,
)
from pipelines import services
from pipelines.models import Pipeline, Webhook
from pipelines.services import DefinitionInvalid
from teams.access import pipeline_allows, pipelines_q
from teams.choices import Act

_ARN = re.compile(r"arn:aws(?:-[\w]+)*:codepipeline:([^:]*):([0-9]{12}):(webhook:)?(.+)")
_TOKEN_SALT = "awsapi.ListWebhooks.NextToken"
_TAGS_SALT = "awsapi.ListTagsForResource.nextToken"


def webhook_arn(caller, name: str) -> str:
    return f"arn:aws:codepipeline:{caller.region}:{account_id()}:webhook:{name}"


def webhook_url(webhook: Webhook) -> str:
    """The address a forge sends this webhook's deliveries to."""
    return settings.CONVEYOR_BASE_URL.rstrip("/") + reverse(
        "api-aws-webhook", kwargs={"token": webhook.url_token})


def _resource(body: dict) -> Pipeline | Webhook:
    """The pipeline or webhook ``resourceArn`` names; InvalidArn or ResourceNotFound otherwise."""
    arn = field_string(body, "resourceArn", required=True, max_length=1011)
    m = _ARN.fullmatch(arn)
    if m is None:
        raise errors.AwsError("InvalidArnException",
                              f"'{arn}' is not a CodePipeline ARN: arn:aws:codepipeline:"
                              "<region>:<account>:<pipeline name> or "
                              "...:webhook:<webhook name>.")
    _region, account, is_webhook, name = m.groups()
    model = Webhook if is_webhook else Pipeline
    resource = model.objects.filter(name=name).first() if account == account_id() else None
    not_found = errors.AwsError("ResourceNotFoundException",
                                f"The resource with the ARN '{arn}' was not found.")
    if resource is None:
        raise not_found
    # A webhook is its pipeline's: the same roles govern it.
    pipeline_checked(resource.pipeline if is_webhook else resource, not_found=not_found)
    return resource


def _tags_invalid(exc: DefinitionInvalid) -> errors.AwsError:
    return errors.AwsError("InvalidTagsException",
                           "; ".join(str(p) for p in exc.problems))


def _tag_list(tags: dict) -> list[dict]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


@operation("TagResource", act=Act.OWN)
def tag_resource(caller, body: dict) -> dict:
    resource = _resource(body)
    tags = field_list(body, "tags")
    try:
        services.resource_tags_set(resource=resource, tags=tags)
    except DefinitionInvalid as exc:
        raise _tags_invalid(exc) from None
    except services.TooManyTags as exc:
        raise errors.AwsError("TooManyTagsException", str(exc)) from None
    return {}


@operation("UntagResource", act=Act.OWN)
def untag_resource(caller, body: dict) -> dict:
    resource = _resource(body)
    keys = field_list(body, "tagKeys", max_length=50)
    if not all(isinstance(k, str) and 1 <= len(k) <= 128 for k in keys):
        raise errors.AwsError("InvalidTagsException",
                              "tagKeys: every key is a string of 1 to 128 characters.")
    services.resource_tags_remove(resource=resource, keys=keys)
    return {}


@operation("ListTagsForResource", act=Act.VIEW)
def list_tags_for_resource(caller, body: dict) -> dict:
    resource = _resource(body)
    limit = field_int(body, "maxResults", minimum=1, maximum=100) or 100
    after = page_token_load(field_string(body, "nextToken", max_length=2048),
                            salt=_TAGS_SALT, operation="ListTagsForResource")
    tags = [t for t in _tag_list(resource.tags) if after is None or t["key"] > after]
    answer = {"tags": tags[:limit]}
    if len(tags) > limit:
        answer["nextToken"] = page_token_dump(tags[limit - 1]["key"], salt=_TAGS_SALT)
    return answer


# --- webhooks -------------------------------------------------------------------------


def _webhook_item(caller, webhook: Webhook) -> dict:
    authentication_configuration = compact({
        "SecretToken": webhook.secret_token or None,
        "AllowedIPRange": webhook.allowed_ip_range or None,
    })
    return compact({
        "definition": {
            "name": webhook.name,
            "targetPipeline": webhook.pipeline.name,
            "targetAction": webhook.target_action,
            "filters": webhook.filters,
            "authentication": webhook.authentication,
            "authenticationConfiguration": authentication_configuration,
        },
        "url": webhook_url(webhook),
        "lastTriggered": epoch(webhook.last_triggered_at),
        "arn": webhook_arn(caller, webhook.name),
        "tags": _tag_list(webhook.tags) or None,
    })


_AUTH_PATHS = ("webhook.authentication", "webhook.authenticationConfiguration")


@operation("PutWebhook", act=Act.OWN)
def put_webhook(caller, body: dict) -> dict:
    """Create or replace a webhook; each kind of refusal with its own AWS exception."""
    definition = field_object(body, "webhook", required=True)
    name = field_string(definition, "name", required=True, pattern=NAME, max_length=100)
    pipeline = pipeline_named(field_string(definition, "targetPipeline", required=True,
                                           pattern=NAME, max_length=100))
    replaced = Webhook.objects.select_related("pipeline").filter(name=name).first()
    if replaced is not None:
        # Replacing a webhook moves it off its pipeline: that one must be owned too.
        pipeline_checked(replaced.pipeline, not_found=errors.access_denied(
            user=caller.user, operation="PutWebhook", resource=webhook_arn(caller, name)))
    try:
        webhook = services.webhook_put(
            name=name, pipeline=pipeline,
            target_action=field_string(definition, "targetAction", required=True,
                                       max_length=100),
            filters=field_list(definition, "filters"),
            authentication=field_string(definition, "authentication", required=True),
            configuration=field_object(definition, "authenticationConfiguration") or {},
            tags=field_list(body, "tags"))
    except DefinitionInvalid as exc:
        problems = exc.problems
        message = "; ".join(str(p) for p in problems)
        if any(p.path == "webhook.targetAction" for p in problems):
            raise errors.validation(message) from None
        if any(p.path.startswith("webhook.filters") for p in problems):
            raise errors.AwsError("InvalidWebhookFilterPatternException", message) from None
        if any(p.path.startswith(_AUTH_PATHS) for p in problems):
            raise errors.AwsError("InvalidWebhookAuthenticationParametersException",
                                  message) from None
        if all(p.path.startswith("tags") for p in problems):
            raise errors.AwsError("InvalidTagsException", message) from None
        raise errors.validation(message) from None
    return {"webhook": _webhook_item(caller, webhook)}


@operation("ListWebhooks", act=Act.VIEW)
def list_webhooks(caller, body: dict) -> dict:
    limit = field_int(body, "MaxResults", minimum=1, maximum=100) or 100
    after = page_token_load(field_string(body, "NextToken", max_length=2048),
                            salt=_TOKEN_SALT, operation="ListWebhooks")
    hooks = (Webhook.objects.filter(pipelines_q(caller.user, Act.VIEW, "pipeline__"))
             .select_related("pipeline").order_by("name"))
    if after is not None:
        hooks = hooks.filter(name__gt=after)
    page = list(hooks[:limit + 1])
    answer = {"webhooks": [_webhook_item(caller, w) for w in page[:limit]]}
    if len(page) > limit:
        answer["NextToken"] = page_token_dump(page[limit - 1].name, salt=_TOKEN_SALT)
    return answer


@operation("DeleteWebhook", act=Act.OWN)
def delete_webhook(caller, body: dict) -> dict:
    # As on AWS, deleting a webhook that does not exist succeeds (the model
    # declares no WebhookNotFoundException for DeleteWebhook).
    name = field_string(body, "name", required=True, pattern=NAME, max_length=100)
    with transaction.atomic():
        webhook = Webhook.objects.select_related("pipeline").filter(name=name).first()
        if webhook is not None and pipeline_allows(caller.user, webhook.pipeline, Act.VIEW):
            pipeline_checked(webhook.pipeline, not_found=pipeline_not_found(name))
            services.webhook_delete(webhook=webhook)
    return {}


def _webhook_named(body: dict) -> Webhook:
    name = field_string(body, "webhookName", required=True, pattern=NAME, max_length=100)
    webhook = Webhook.objects.select_related("pipeline").filter(name=name).first()
    not_found = errors.AwsError("WebhookNotFoundException",
                                f"The webhook '{name}' was not found.")
    if webhook is None:
        raise not_found
    pipeline_checked(webhook.pipeline, not_found=not_found)
    return webhook


@operation("RegisterWebhookWithThirdParty", act=Act.OWN)
def register_webhook_with_third_party(caller, body: dict) -> dict:
    webhook = _webhook_named(body)
    raise errors.validation(
        "Conveyor does not hold credentials for your forge, so it cannot register webhooks "
        "there. Add it yourself: in the repository's webhook settings (GitHub: Settings > "
        f"Webhooks > Add webhook), set the Payload URL to {webhook_url(webhook)}, the "
        "content type to application/json"
        + (", and the secret to the webhook's SecretToken" if webhook.secret_token else "")
        + "; ListWebhooks shows the URL again.")


@operation("DeregisterWebhookWithThirdParty", act=Act.OWN)
def deregister_webhook_with_third_party(caller, body: dict) -> dict:
    webhook = _webhook_named(body)
    raise errors.validation(
        "Conveyor does not hold credentials for your forge, so it cannot remove webhooks "
        "there. Remove the webhook whose Payload URL is "
        f"{webhook_url(webhook)} in the repository's webhook settings; DeleteWebhook "
        f"'{webhook.name}' makes Conveyor ignore it meanwhile.")

