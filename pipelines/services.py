"""Every operation that changes a pipeline definition.

Views, serializers, the admin and management commands call these functions and
hold no rules of their own.
"""

import re
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from observability.audit import audit_record
from observability.models import AuditAct
from pipelines import documents, secrets, webhooks
from pipelines.buildspec import buildspec_parse
from pipelines.choices import BuildNetwork, ComputeType
from pipelines.connection_services import (  # noqa: F401 (re-exported for callers)
    ConnectionInvalid,
    connection_check,
    connection_credential,
    connection_delete,
    connection_export_all,
    connection_import,
    connection_problems,
    connection_save,
)
from pipelines.models import (
    Action,
    BuildProject,
    Pipeline,
    PipelineSchedule,
    PipelineVersion,
    Stage,
    Webhook,
    WebhookAuthentication,
)
from pipelines.report import ActionReport, migration_report
from pipelines.report import blocking as report_blocking
from pipelines.validation import NAME_RE, NAME_RULE, Problem, errors, validate_document


class DefinitionInvalid(Exception):
    """A definition document was refused; ``problems`` lists every reason with its path."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class PipelineNotFound(Exception):
    pass


@dataclass
class SaveResult:
    pipeline: Pipeline
    created: bool
    changed: bool
    warnings: list[Problem]


def document_load(text: str | bytes) -> tuple[Any, dict | None]:
    """Parse JSON/YAML text into (pipeline object, wrapper metadata); refuse non-documents."""
    try:
        data = documents.parse_text(text)
    except documents.DocumentError as exc:
        raise DefinitionInvalid([Problem("", str(exc))]) from exc
    return documents.unwrap(data)


def pipeline_save(
    *,
    document: Any,
    user=None,
    name: str | None = None,
    metadata: dict | None = None,
    create: bool | None = None,
) -> SaveResult:
    """Create or update the pipeline a document describes.

    1. Validate the whole document; any error raises ``DefinitionInvalid`` and
       changes nothing.
    2. ``name`` (the pipeline being edited, e.g. from the URL) must match the
       document's name. ``create=True`` refuses an existing name, ``False`` a
       missing one, ``None`` accepts either (import).
    3. A document equal to the current one (after normalizing) is a no-op: no
       new version. Otherwise a new ``PipelineVersion`` is written and the
       Stage/Action rows are rewritten, keeping each stage's transition state.
    """
    document, wrapper = documents.unwrap(document)
    metadata = metadata or wrapper
    problems = validate_document(document)
    if errors(problems):
        raise DefinitionInvalid(problems)
    warnings = [p for p in problems if p.severity == "warning"]
    if name is not None and document["name"] != name:
        raise DefinitionInvalid(
            [Problem("name", f'"{document["name"]}" does not match the pipeline being '
                     f'changed, "{name}"; renaming is not supported')]
        )
    normalized = documents.normalize(document)
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(name=normalized["name"]).first()
        # Secret values sealed; "****" sent back keeps the stored one (pipelines.secrets).
        normalized, refused = secrets.seal_document(
            normalized, previous=pipeline.document if pipeline is not None else None)
        if refused:
            raise DefinitionInvalid([Problem(path, message) for path, message in refused])
        if pipeline is None:
            if create is False:
                raise PipelineNotFound(normalized["name"])
            pipeline = Pipeline.objects.create(
                name=normalized["name"],
                execution_mode=normalized["executionMode"],
                version=1,
                document=normalized,
            )
            PipelineVersion.objects.create(
                pipeline=pipeline, number=1, document=normalized,
                imported_metadata=metadata, created_by=_user(user),
            )
            _write_rows(pipeline, normalized)
            audit_record(action=AuditAct.PIPELINE_CREATE, user=user, pipeline=pipeline.name,
                         detail={"version": 1})
            return SaveResult(pipeline, created=True, changed=True, warnings=warnings)
        if create is True:
            raise DefinitionInvalid(
                [Problem("name", f'a pipeline named "{pipeline.name}" already exists')]
            )
        if pipeline.document == normalized:
            return SaveResult(pipeline, created=False, changed=False, warnings=warnings)
        # Compare-and-set on the version number: two concurrent saves cannot both
        # become version N+1 (the unique constraint on (pipeline, number) backs it).
        pipeline.version += 1
        pipeline.execution_mode = normalized["executionMode"]
        pipeline.document = normalized
        pipeline.save(update_fields=["version", "execution_mode", "document", "updated_at"])
        PipelineVersion.objects.create(
            pipeline=pipeline, number=pipeline.version, document=normalized,
            imported_metadata=metadata, created_by=_user(user),
        )
        _write_rows(pipeline, normalized)
        audit_record(action=AuditAct.PIPELINE_UPDATE, user=user, pipeline=pipeline.name,
                     detail={"version": pipeline.version})
        return SaveResult(pipeline, created=False, changed=True, warnings=warnings)


@dataclass
class CheckResult:
    """What importing a document would do, without doing it (``pipeline_check``)."""

    name: str
    exists: bool
    problems: list[Problem]
    actions: list[ActionReport]

    @property
    def valid(self) -> bool:
        return not errors(self.problems)

    @property
    def can_start(self) -> bool:
        return self.valid and not report_blocking(self.actions)


def pipeline_check(*, document: Any) -> CheckResult:
    """Validate a document and report, per action, whether it runs here; save nothing."""
    document, _wrapper = documents.unwrap(document)
    problems = validate_document(document)
    name = document.get("name") if isinstance(document, dict) else None
    exists = isinstance(name, str) and Pipeline.objects.filter(name=name).exists()
    return CheckResult(name=name if isinstance(name, str) else "", exists=exists,
                       problems=problems, actions=migration_report(document))


MIN_WEBHOOK_SECRET = 16


def pipeline_set_webhook_secret(*, pipeline: Pipeline, secret: str, user=None) -> None:
    """Set the secret push webhooks must sign their body with; "" turns push webhooks off.

    The secret is never part of the definition document (it would be exported), nor
    of the audit entry recording the change (which says only set or cleared).
    """
    secret = (secret or "").strip()
    if secret and len(secret) < MIN_WEBHOOK_SECRET:
        raise DefinitionInvalid([Problem(
            "secret", f"must be at least {MIN_WEBHOOK_SECRET} characters, or empty to turn "
            "push webhooks off")])
    if len(secret) > 200:
        raise DefinitionInvalid([Problem("secret", "must be at most 200 characters")])
    with transaction.atomic():
        changed = Pipeline.objects.filter(pk=pipeline.pk).exclude(
            webhook_secret=secret).update(webhook_secret=secret)
        if changed:
            audit_record(action=AuditAct.SECRET_CHANGE, user=user, pipeline=pipeline.name,
                         detail={"secret": "webhook", "set": bool(secret)})
    pipeline.webhook_secret = secret


def pipeline_delete(*, pipeline: Pipeline, user=None) -> None:
    """Delete a pipeline with its versions (executions go with it, by cascade).

    Its audit entries stay: they name the pipeline, they do not point at its row.
    """
    with transaction.atomic():
        audit_record(action=AuditAct.PIPELINE_DELETE, user=user, pipeline=pipeline.name,
                     detail={"version": pipeline.version})
        pipeline.delete()


def pipeline_export(*, pipeline: Pipeline, version: int | None = None) -> dict:
    """The definition document as ``get-pipeline`` shows it: ``{"pipeline": …, "metadata": …}``."""
    if version is None or version == pipeline.version:
        doc, number = pipeline.document, pipeline.version
        created = pipeline.versions.filter(number=number).values_list("created_at", flat=True)
        updated = created.first() or pipeline.updated_at
    else:
        pv = pipeline.versions.get(number=version)
        doc, number, updated = pv.document, pv.number, pv.created_at
    return {
        # Secret values are never given out: "****", as AWS shows them.
        "pipeline": secrets.mask(documents.with_version(doc, number)),
        "metadata": {
            "created": pipeline.created_at.isoformat(),
            "updated": updated.isoformat(),
        },
    }


def document_from_rows(pipeline: Pipeline) -> dict:
    """Rebuild the document from the Stage/Action rows (after an edit in the admin).

    Top-level fields the rows do not hold (roleArn, variables, triggers, ...) are
    taken from the current document.
    """
    doc = {k: v for k, v in pipeline.document.items() if k != "stages"}
    doc["name"] = pipeline.name
    doc["executionMode"] = pipeline.execution_mode
    doc["stages"] = []
    for stage in pipeline.stages.order_by("position").prefetch_related("actions"):
        actions = []
        for action in sorted(stage.actions.all(), key=lambda a: (a.position, a.pk or 0)):
            body = dict(action.extras)
            body.update({
                "name": action.name,
                "actionTypeId": {
                    "category": action.category, "owner": action.owner,
                    "provider": action.provider, "version": action.provider_version,
                },
                "runOrder": action.run_order,
                "configuration": action.configuration,
                "inputArtifacts": action.input_artifacts,
                "outputArtifacts": action.output_artifacts,
            })
            for key, value in (("namespace", action.namespace),
                               ("timeoutInMinutes", action.timeout_in_minutes),
                               ("commands", action.commands),
                               ("environmentVariables", action.environment_variables)):
                if value not in (None, "", []):
                    body[key] = value
            actions.append(body)
        doc["stages"].append({**stage.extras, "name": stage.name, "actions": actions})
    return doc


_ACTION_KNOWN = {"name", "actionTypeId", "runOrder", "configuration", "inputArtifacts",
                 "outputArtifacts", "namespace", "timeoutInMinutes", "commands",
                 "environmentVariables"}


def _write_rows(pipeline: Pipeline, doc: dict) -> None:
    """Rewrite the Stage/Action projection of ``doc``; stages keep their transition state."""
    existing = {s.name: s for s in pipeline.stages.all()}
    wanted = [s["name"] for s in doc["stages"]]
    pipeline.stages.exclude(name__in=wanted).delete()
    for position, stage_doc in enumerate(doc["stages"]):
        stage = existing.get(stage_doc["name"])
        extras = {k: v for k, v in stage_doc.items() if k not in ("name", "actions")}
        if stage is None:
            stage = Stage.objects.create(
                pipeline=pipeline, name=stage_doc["name"], position=position, extras=extras
            )
        else:
            stage.position, stage.extras = position, extras
            stage.save(update_fields=["position", "extras"])
            stage.actions.all().delete()
        Action.objects.bulk_create([
            Action(
                stage=stage,
                name=a["name"],
                position=i,
                category=a["actionTypeId"]["category"],
                owner=a["actionTypeId"].get("owner", "Custom"),
                provider=a["actionTypeId"]["provider"],
                provider_version=a["actionTypeId"].get("version", "1"),
                run_order=a["runOrder"],
                configuration=a["configuration"],
                input_artifacts=a["inputArtifacts"],
                output_artifacts=a["outputArtifacts"],
                namespace=a.get("namespace", ""),
                timeout_in_minutes=a.get("timeoutInMinutes"),
                commands=a.get("commands", []),
                environment_variables=a.get("environmentVariables", []),
                extras={k: v for k, v in a.items() if k not in _ACTION_KNOWN},
            )
            for i, a in enumerate(stage_doc["actions"])
        ])


def stage_transition_set(*, stage: Stage, enabled: bool, reason: str = "", user=None) -> bool:
    """Enable or disable the transition into a stage; True if it changed.

    Called by ``executions.services``, which then lets an inbound execution in.
    """
    if not enabled and not reason.strip():
        raise DefinitionInvalid([Problem("reason", "a reason is required to disable a "
                                         "transition")])
    changed = Stage.objects.filter(pk=stage.pk, transition_enabled=not enabled).update(
        transition_enabled=enabled,
        transition_disabled_reason="" if enabled else reason.strip()[:300],
        transition_changed_by=getattr(user, "username", "") or "",
        transition_changed_at=timezone.now(),
    )
    stage.refresh_from_db()
    return bool(changed)


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


# --- tags ------------------------------------------------------------------------


class TooManyTags(Exception):
    """Tagging would leave a resource with more than ``webhooks.MAX_TAGS`` tags."""


def resource_tags_set(*, resource: Pipeline | Webhook, tags: list[dict]) -> None:
    """Add or overwrite tags (``[{"key", "value"}]``) on a pipeline or a webhook.

    Refuses malformed tags (``DefinitionInvalid`` at ``tags[i].key``/``.value``)
    and a result of more than 50 tags (``TooManyTags``); nothing changes then.
    """
    problems = webhooks.tag_problems(tags)
    if problems:
        raise DefinitionInvalid(problems)
    with transaction.atomic():
        row = type(resource).objects.select_for_update().get(pk=resource.pk)
        merged = {**row.tags, **{t["key"]: t["value"] for t in tags}}
        if len(merged) > webhooks.MAX_TAGS:
            raise TooManyTags(f"{resource} would have {len(merged)} tags; the most is "
                              f"{webhooks.MAX_TAGS}")
        type(resource).objects.filter(pk=resource.pk).update(tags=merged)
    resource.tags = merged


def resource_tags_remove(*, resource: Pipeline | Webhook, keys: list[str]) -> None:
    """Remove the tags with these keys (keys it does not have are no error, as on AWS)."""
    with transaction.atomic():
        row = type(resource).objects.select_for_update().get(pk=resource.pk)
        kept = {k: v for k, v in row.tags.items() if k not in set(keys)}
        type(resource).objects.filter(pk=resource.pk).update(tags=kept)
    resource.tags = kept


# --- webhooks (CodePipeline's PutWebhook) -------------------------------------------


def webhook_put(*, name: str, pipeline: Pipeline, target_action: str, filters: list[dict],
                authentication: str, configuration: dict | None = None,
                tags: list[dict] | None = None) -> Webhook:
    """Create or replace the webhook ``name`` (PutWebhook); its URL token survives a replace.

    Every problem is reported at once, each at its path under ``webhook``
    (``webhook.targetAction``, ``webhook.filters[0].jsonPath``,
    ``webhook.authenticationConfiguration.SecretToken``…), and nothing is stored:
    the target action must be a source action of the pipeline, the filters
    readable JSONPaths whose ``{Property}`` references exist, GITHUB_HMAC needs
    a SecretToken, IP an AllowedIPRange.
    """
    configuration = configuration or {}
    problems: list[Problem] = []
    stages = pipeline.document.get("stages") or []
    sources = {a["name"]: a for a in (stages[0].get("actions") or [] if stages else [])
               if (a.get("actionTypeId") or {}).get("category") == "Source"}
    action = sources.get(target_action)
    if action is None:
        problems.append(Problem("webhook.targetAction", f'pipeline "{pipeline.name}" has no '
                                f'source action "{target_action}" (its source actions: '
                                f'{", ".join(sorted(sources)) or "none"})'))
    if action is not None:  # {Property} references are checked against the action's
        problems += webhooks.filter_problems(filters, action.get("configuration") or {},
                                             "webhook.filters")
    if authentication not in WebhookAuthentication.values:
        problems.append(Problem("webhook.authentication",
                                f"must be one of {', '.join(WebhookAuthentication.values)}"))
    secret = configuration.get("SecretToken") or ""
    ip_range = configuration.get("AllowedIPRange") or ""
    if authentication == WebhookAuthentication.GITHUB_HMAC and (
            not isinstance(secret, str) or not 1 <= len(secret) <= 100):
        problems.append(Problem("webhook.authenticationConfiguration.SecretToken",
                                "GITHUB_HMAC needs a secret of 1 to 100 characters"))
    if authentication == WebhookAuthentication.IP:
        why = webhooks.ip_range_problem(ip_range)
        if why:
            problems.append(Problem("webhook.authenticationConfiguration.AllowedIPRange", why))
    problems += webhooks.tag_problems(tags or [])
    if problems:
        raise DefinitionInvalid(problems)
    with transaction.atomic():
        webhook, created = Webhook.objects.select_for_update().get_or_create(
            name=name, defaults={"pipeline": pipeline, "url_token": token_urlsafe(32)})
        webhook.pipeline = pipeline
        webhook.target_action = target_action
        webhook.filters = [{"jsonPath": f["jsonPath"], "matchEquals": f["matchEquals"]}
                           for f in filters]
        webhook.authentication = authentication
        webhook.secret_token = secret if authentication == "GITHUB_HMAC" else ""
        webhook.allowed_ip_range = ip_range if authentication == "IP" else ""
        if tags:
            webhook.tags = {**webhook.tags, **{t["key"]: t["value"] for t in tags}}
        webhook.save()
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    """Delete a webhook: its URL starts nothing any more."""
    webhook.delete()


# --- schedules ---------------------------------------------------------------------


def schedule_save(*, schedule: PipelineSchedule) -> PipelineSchedule:
    """Validate (``DefinitionInvalid`` at ``cron`` / ``timezone``) and save a schedule."""
    from pipelines import schedules

    problems = []
    why = schedules.cron_problem(schedule.cron)
    if why:
        problems.append(Problem("cron", why))
    why = schedules.timezone_problem(schedule.timezone)
    if why:
        problems.append(Problem("timezone", why))
    if problems:
        raise DefinitionInvalid(problems)
    schedule.save()
    return schedule


# --- build projects ---------------------------------------------------------------

PROJECT_KEYS = ("name", "description", "source", "environment", "timeoutInMinutes", "cache",
                "network")
# Fields of an AWS project (``aws codebuild batch-get-projects``) that have no use here:
# accepted on import, each named in a warning.
AWS_PROJECT_FIELDS = ("arn", "serviceRole", "artifacts", "secondaryArtifacts", "secondarySources",
                      "secondarySourceVersions", "sourceVersion", "logsConfig", "vpcConfig",
                      "encryptionKey", "tags", "created", "lastModified", "badge",
                      "queuedTimeoutInMinutes", "projectVisibility", "concurrentBuildLimit",
                      "fileSystemLocations", "buildBatchConfig", "webhook", "publicProjectAlias",
                      "resourceAccessRole", "autoRetryLimit")
ENV_VAR_TYPES = ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER")
SOURCE_NOT_USED = ("type", "location", "gitCloneDepth", "auth", "reportBuildStatus",
                   "insecureSsl", "gitSubmodulesConfig", "sourceIdentifier", "buildStatusConfig")
ENVIRONMENT_NOT_USED = ("type", "image", "imagePullCredentialsType", "privilegedMode",
                        "certificate", "registryCredential", "fleet")
CACHE_NOT_USED = ("type", "location", "modes", "cacheNamespace")


def _subfields(add, path: str, value: dict, known: tuple[str, ...], not_used: tuple[str, ...],
               why: str) -> None:
    """Name each key of ``value`` that is AWS-only (a warning) or unknown (an error)."""
    for key in value:
        if key in known:
            continue
        if key in not_used:
            add(f"{path}.{key}", why, "warning")
        else:
            add(f"{path}.{key}", f'"{key}" is not a {path} field: use ' + ", ".join(known))


class BuildProjectInvalid(Exception):
    """A build project document was refused; ``problems`` lists every reason with its path."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass
class BuildProjectSaveResult:
    project: Any
    created: bool
    warnings: list[Problem]


def build_project_problems(document: Any) -> list[Problem]:
    """Every problem of a build project document, each at its path (errors and warnings).

    The document is CodeBuild's project shape, camelCase: ``name``, ``description``,
    ``source.buildspec``, ``environment.computeType``, ``environment.environmentVariables``,
    ``timeoutInMinutes``, ``cache.paths``, and Conveyor's own ``network`` (``host`` or
    ``none``: see docs/runners.md). An inline buildspec is checked as a build
    would check it (its problems at ``source.buildspec.<path>``).
    """
    problems: list[Problem] = []

    def add(path, message, severity="error"):
        problems.append(Problem(path, message, severity))

    if not isinstance(document, dict):
        return [Problem("", "a build project must be an object")]
    name = document.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        add("name", "is required" if name is None else f'"{name}" is not a valid name: use '
            f"{NAME_RULE}")
    for key in document:
        if key in AWS_PROJECT_FIELDS:
            add(key, "not used: kept by AWS only, builds here do not read it", "warning")
        elif key not in PROJECT_KEYS:
            add(key, f'"{key}" is not a build project field: use ' + ", ".join(PROJECT_KEYS))
    if "description" in document and not isinstance(document["description"], str):
        add("description", "must be a string")
    source = document.get("source", {})
    if not isinstance(source, dict):
        add("source", "must be an object")
        source = {}
    _subfields(add, "source", source, ("buildspec",), SOURCE_NOT_USED,
               "not used: the source of a build is its action's input artifacts")
    buildspec = source.get("buildspec", "")
    if not isinstance(buildspec, str):
        add("source.buildspec", "must be a string: a path or an inline buildspec")
    elif "\n" in buildspec.strip():
        _, found = buildspec_parse(buildspec)
        for p in found:
            add(f"source.buildspec.{p.path}" if p.path else "source.buildspec", p.message,
                p.severity)
    elif buildspec and (buildspec.startswith("/") or ".." in buildspec.split("/")):
        add("source.buildspec", f'"{buildspec}" must be a path inside the primary source')
    env = document.get("environment", {})
    if not isinstance(env, dict):
        add("environment", "must be an object")
        env = {}
    _subfields(add, "environment", env, ("computeType", "environmentVariables"),
               ENVIRONMENT_NOT_USED, "not used: builds run with the tools of the machine "
               "(or agent) that runs them")
    compute = env.get("computeType", ComputeType.SMALL.value)
    if compute not in ComputeType.values:
        add("environment.computeType", f'"{compute}" is not a compute type: use '
            + ", ".join(ComputeType.values))
    variables = env.get("environmentVariables", [])
    if not isinstance(variables, list):
        add("environment.environmentVariables", "must be a list")
        variables = []
    seen: set[str] = set()
    for i, item in enumerate(variables):
        path = f"environment.environmentVariables[{i}]"
        if not isinstance(item, dict):
            add(path, "must be an object with name, value and type")
            continue
        var = item.get("name")
        if not isinstance(var, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", var):
            add(f"{path}.name", f'"{var}" is not an environment variable name')
        elif var in seen:
            add(f"{path}.name", f'environment variable "{var}" is set twice')
        else:
            seen.add(var)
        if not isinstance(item.get("value"), str):
            add(f"{path}.value", "is required (a string)")
        if item.get("type", "PLAINTEXT") not in ENV_VAR_TYPES:
            add(f"{path}.type", f'"{item.get("type")}" is not a type: use '
                + ", ".join(ENV_VAR_TYPES))
    timeout = document.get("timeoutInMinutes", 60)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 5 <= timeout <= 2160:
        add("timeoutInMinutes", f"must be a whole number of minutes from 5 to 2160, not "
            f"{timeout!r}")
    cache = document.get("cache", {})
    if not isinstance(cache, dict):
        add("cache", "must be an object")
        cache = {}
    _subfields(add, "cache", cache, ("paths",), CACHE_NOT_USED,
               "not used: the cache is kept on this machine per project")
    paths = cache.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        add("cache.paths", "must be a list of paths")
    network = document.get("network", BuildNetwork.HOST.value)
    if network not in BuildNetwork.values:
        add("network", f'"{network}" is not a network setting: use "host" (the network of the '
            'machine, the default) or "none" (no network at all)')
    return problems


def build_project_save(*, document: Any, name: str | None = None) -> BuildProjectSaveResult:
    """Create or update the build project a document describes.

    1. Every problem is found at once; an error raises ``BuildProjectInvalid`` and
       changes nothing. 2. ``name`` (the project being edited, e.g. from the URL)
       must match the document's. 3. Warnings (AWS-only fields) come back with
       the result. An AWS answer ``{"projects": [one]}`` is accepted as it is.
    """
    if isinstance(document, dict) and isinstance(document.get("projects"), list) \
            and len(document["projects"]) == 1:
        document = document["projects"][0]
    found = build_project_problems(document)
    if name is not None and isinstance(document, dict) and document.get("name") != name:
        found.append(Problem("name", f'the document names "{document.get("name")}", not '
                             f'"{name}"'))
    if errors(found):
        raise BuildProjectInvalid(found)
    env = document.get("environment") or {}
    values = {
        "description": document.get("description", ""),
        "buildspec": (document.get("source") or {}).get("buildspec", ""),
        "environment_variables": [
            {"name": v["name"], "value": v["value"], "type": v.get("type", "PLAINTEXT")}
            for v in env.get("environmentVariables", [])],
        "timeout_in_minutes": document.get("timeoutInMinutes", 60),
        "compute_type": env.get("computeType", "BUILD_GENERAL1_SMALL"),
        "cache_paths": list((document.get("cache") or {}).get("paths", [])),
        "network": document.get("network", BuildNetwork.HOST.value),
    }
    project, created = BuildProject.objects.update_or_create(name=document["name"],
                                                             defaults=values)
    return BuildProjectSaveResult(project, created, [p for p in found if p.severity == "warning"])


def build_project_export(project) -> dict:
    """A build project as its document (``build_project_save`` reads it back unchanged)."""
    return {
        "name": project.name,
        "description": project.description,
        "source": {"buildspec": project.buildspec},
        "environment": {"computeType": project.compute_type,
                        "environmentVariables": list(project.environment_variables)},
        "timeoutInMinutes": project.timeout_in_minutes,
        "cache": {"paths": list(project.cache_paths)},
        "network": project.network,
    }


def build_project_delete(*, name: str) -> None:
    BuildProject.objects.filter(name=name).delete()


def build_project_next_number(*, name: str) -> int | None:
    """Count one more build of the project and return its number (None: no such project).

    One UPDATE with F(): two builds starting at once get two numbers.
    """
    with transaction.atomic():
        if not BuildProject.objects.filter(name=name).update(build_count=F("build_count") + 1):
            return None
        return BuildProject.objects.filter(name=name).values_list("build_count", flat=True)[0]
