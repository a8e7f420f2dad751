"""Custom action types: every operation that creates, changes or deletes one.

The AWS endpoint (CreateCustomActionType, UpdateActionType, DeleteCustomActionType),
the REST API and the admin call these; rules of a type's definition are
``jobs.validation.type_problems``. Names ``action_type_<action>`` (house style).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import errors
from jobs.models import CustomActionType
from jobs.validation import type_problems
from pipelines import providers


class ActionTypeInvalid(errors.JobInvalid):
    """A definition with problems: ``problems`` as (JSON path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


def _fields(data: dict) -> dict:
    settings = data.get("settings") or {}
    inputs, outputs = data["inputArtifactDetails"], data["outputArtifactDetails"]
    return {
        "entity_url_template": settings.get("entityUrlTemplate", ""),
        "execution_url_template": settings.get("executionUrlTemplate", ""),
        "revision_url_template": settings.get("revisionUrlTemplate", ""),
        "third_party_configuration_url": settings.get("thirdPartyConfigurationUrl", ""),
        "configuration_properties": [
            {"name": p["name"], "required": p["required"], "key": p["key"],
             "secret": p["secret"], "queryable": bool(p.get("queryable", False)),
             **({"description": p["description"]} if p.get("description") else {}),
             **({"type": p["type"]} if p.get("type") else {})}
            for p in data.get("configurationProperties") or []],
        "input_minimum": inputs["minimumCount"], "input_maximum": inputs["maximumCount"],
        "output_minimum": outputs["minimumCount"], "output_maximum": outputs["maximumCount"],
    }


def action_type_refusal(*, data: dict, owner: str) -> list[tuple[str, str]]:
    """Why a new type may not be registered, as (JSON path, message) pairs ([] if it may):
    its definition's problems, a built-in provider's name, an id used before."""
    problems = type_problems(data)
    if owner not in ("Custom", "ThirdParty"):
        problems.append(("owner", "must be Custom or ThirdParty"))
    if problems:
        return problems
    if providers.get(data["category"], data["provider"]) is not None:
        return [("provider", f'"{data["provider"]}" is a built-in provider of category '
                 f'{data["category"]}: choose another name')]
    if CustomActionType.objects.filter(category=data["category"], owner=owner,
                                       provider=data["provider"],
                                       version=data["version"]).exists():
        return [("version", "this action type id exists, or existed and was deleted: a "
                 "deleted type's version cannot be used again")]
    return []


def action_type_create(*, data: dict, owner: str = "Custom", user=None
                       ) -> tuple[CustomActionType, str]:
    """Register a custom action type from AWS's CreateCustomActionType members.

    1. The definition is checked whole (``ActionTypeInvalid`` with every problem).
    2. A built-in provider's name in that category is refused: the built-in one runs.
    3. An id used before, even by a deleted type, is refused (AWS: a deleted type's
       version cannot be used again).
    4. A ThirdParty type gets a client id and a client token, the token returned
       here only (stored hashed). Returns (type, client token or "").
    """
    problems = action_type_refusal(data=data, owner=owner)
    if problems:
        raise ActionTypeInvalid(problems)
    token = ""
    extra = {}
    if owner == "ThirdParty":
        token = secrets.token_urlsafe(32)
        extra = {"client_id": uuid.uuid4(),
                 "client_token_hash": hashlib.sha256(token.encode()).hexdigest()}
    try:
        with transaction.atomic():
            action_type = CustomActionType.objects.create(
                category=data["category"], owner=owner, provider=data["provider"],
                version=data["version"], created_by=user if getattr(user, "pk", None) else None,
                **_fields(data), **extra)
    except IntegrityError:   # the same id registered at the same moment: the index decides
        raise ActionTypeInvalid([("version", "this action type id exists")]) from None
    return action_type, token


def action_type_export(t: CustomActionType) -> dict:
    """An ActionType in AWS's shape (CreateCustomActionType, ListActionTypes, REST)."""
    settings = {key: value for key, value in (
        ("thirdPartyConfigurationUrl", t.third_party_configuration_url),
        ("entityUrlTemplate", t.entity_url_template),
        ("executionUrlTemplate", t.execution_url_template),
        ("revisionUrlTemplate", t.revision_url_template)) if value}
    return {
        "id": t.type_id,
        "settings": settings,
        "actionConfigurationProperties": t.properties(),
        "inputArtifactDetails": {"minimumCount": t.input_minimum,
                                 "maximumCount": t.input_maximum},
        "outputArtifactDetails": {"minimumCount": t.output_minimum,
                                  "maximumCount": t.output_maximum},
    }


def action_type_get(*, category: str, owner: str, provider: str, version: str
                    ) -> CustomActionType:
    action_type = CustomActionType.objects.filter(
        category=category, owner=owner, provider=provider, version=version,
        deleted_at__isnull=True).first()
    if action_type is None:
        raise errors.ActionTypeNotFound(
            f"Action type {category}/{owner}/{provider}/{version} does not exist.")
    return action_type


def action_type_update(*, action_type: CustomActionType, data: dict) -> CustomActionType:
    """Replace a type's settings, properties and artifact counts (its id stays)."""
    data = {**data, "category": action_type.category, "provider": action_type.provider,
            "version": action_type.version}
    problems = type_problems(data)
    if problems:
        raise ActionTypeInvalid(problems)
    for key, value in _fields(data).items():
        setattr(action_type, key, value)
    action_type.save()
    return action_type


def action_type_delete(*, action_type: CustomActionType) -> bool:
    """Mark a type deleted (AWS): gone from lists and polls, its id never used again.

    Actions already using it stay in their pipelines; validation then reports them,
    and jobs already queued for it can still be worked (they were made before).
    True if this call deleted it.
    """
    return bool(CustomActionType.objects.filter(pk=action_type.pk, deleted_at__isnull=True)
                .update(deleted_at=timezone.now()))
