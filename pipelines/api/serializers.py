"""Serializers of the pipelines API.

The definition document is validated by ``pipelines.validation`` (through
``pipelines.services``), never by these serializers: the declaration
serializers below only describe the document's shape for the OpenAPI schema,
so that the schema and the rules cannot disagree about what is accepted. The
summary serializers render list rows.
"""

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from pipelines.choices import ActionCategory, ActionOwner, ConnectionProvider, ExecutionMode
from pipelines.models import Connection, Pipeline, PipelineVersion


class ActionTypeIdSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=ActionCategory.choices)
    owner = serializers.ChoiceField(choices=ActionOwner.choices, default=ActionOwner.CUSTOM)
    provider = serializers.CharField(help_text="A provider registered for the category, "
                                     "e.g. Git (Source), Shell (Build, Test, Deploy).")
    version = serializers.CharField(default="1")


class ArtifactSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9_-]{1,100}$")
    files = serializers.ListField(child=serializers.CharField(), required=False,
                                  help_text="Output artifacts only: file globs to keep.")


class EnvironmentVariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField()
    type = serializers.ChoiceField(choices=["PLAINTEXT", "SECRETS_MANAGER"], default="PLAINTEXT")


class ActionDeclarationSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9.@_-]{1,100}$")
    actionTypeId = ActionTypeIdSerializer()
    runOrder = serializers.IntegerField(min_value=1, max_value=999, default=1)
    configuration = serializers.DictField(child=serializers.CharField(), required=False)
    commands = serializers.ListField(child=serializers.CharField(), required=False)
    environmentVariables = EnvironmentVariableSerializer(many=True, required=False)
    inputArtifacts = ArtifactSerializer(many=True, required=False)
    outputArtifacts = ArtifactSerializer(many=True, required=False)
    namespace = serializers.CharField(required=False)
    timeoutInMinutes = serializers.IntegerField(min_value=1, max_value=86400, required=False)


class StageDeclarationSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9.@_-]{1,100}$")
    actions = ActionDeclarationSerializer(many=True)


class PipelineVariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    defaultValue = serializers.CharField(required=False)
    description = serializers.CharField(required=False)


class PipelineDeclarationSerializer(serializers.Serializer):
    """CodePipeline's pipeline structure. Other fields (roleArn, artifactStore, …) are kept."""

    name = serializers.RegexField(r"^[A-Za-z0-9.@_-]{1,100}$")
    executionMode = serializers.ChoiceField(choices=ExecutionMode.choices,
                                            default=ExecutionMode.SUPERSEDED)
    pipelineType = serializers.ChoiceField(choices=["V1", "V2"], required=False)
    variables = PipelineVariableSerializer(many=True, required=False)
    triggers = serializers.ListField(child=serializers.DictField(), required=False,
                                     help_text="CodePipeline triggers with gitConfiguration.")
    stages = StageDeclarationSerializer(many=True)
    version = serializers.IntegerField(read_only=True,
                                       help_text="Conveyor's version number; ignored on input.")


class PipelineMetadataSerializer(serializers.Serializer):
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField(help_text="When this version was saved.")


class ProblemSerializer(serializers.Serializer):
    path = serializers.CharField(help_text='A JSON path, e.g. "stages[1].actions[0].name".')
    message = serializers.CharField()
    severity = serializers.ChoiceField(choices=["error", "warning"], required=False)


class PipelineDocumentSerializer(serializers.Serializer):
    """The definition as ``get-pipeline`` answers it."""

    pipeline = PipelineDeclarationSerializer()
    metadata = PipelineMetadataSerializer()


class PipelineSavedSerializer(PipelineDocumentSerializer):
    """The saved definition, with the warnings of the saved document."""

    warnings = ProblemSerializer(many=True)


class WrappedDeclarationSerializer(serializers.Serializer):
    pipeline = PipelineDeclarationSerializer()
    metadata = serializers.DictField(required=False)


DefinitionInput = PolymorphicProxySerializer(
    component_name="PipelineDefinitionInput",
    serializers=[PipelineDeclarationSerializer, WrappedDeclarationSerializer],
    resource_type_field_name=None,
)


class ErrorSerializer(serializers.Serializer):
    """The one error body of the API."""

    detail = serializers.CharField()
    errors = ProblemSerializer(many=True, required=False)
    warnings = ProblemSerializer(many=True, required=False)


class PipelineSummarySerializer(serializers.ModelSerializer):
    """A row of the pipeline list (ListPipelines' PipelineSummary, plus a stage count)."""

    executionMode = serializers.CharField(source="execution_mode")
    stageCount = serializers.IntegerField(source="stage_count", read_only=True)
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = Pipeline
        fields = ["name", "version", "executionMode", "stageCount", "created", "updated"]


class PipelineVersionSummarySerializer(serializers.ModelSerializer):
    """A row of a pipeline's version history."""

    pipelineName = serializers.CharField(source="pipeline.name")
    version = serializers.IntegerField(source="number")
    created = serializers.DateTimeField(source="created_at")
    createdBy = serializers.SerializerMethodField()

    class Meta:
        model = PipelineVersion
        fields = ["pipelineName", "version", "created", "createdBy"]

    def get_createdBy(self, obj) -> str | None:  # noqa: N802 (the API field's name)
        return obj.created_by.get_username() if obj.created_by else None


class WebhookSerializer(serializers.Serializer):
    """Where a forge sends push events, and whether a secret is set (it is never shown)."""

    url = serializers.CharField(read_only=True)
    secretSet = serializers.BooleanField(read_only=True)  # noqa: N815 (API vocabulary)


class WebhookSecretInput(serializers.Serializer):
    secret = serializers.CharField(allow_blank=True, max_length=200, help_text=(
        "HMAC-SHA256 secret for X-Hub-Signature-256, at least 16 characters; "
        '"" turns push webhooks off.'))


class ReadinessSerializer(serializers.Serializer):
    need = serializers.CharField()
    how = serializers.CharField()


class ActionReportSerializer(serializers.Serializer):
    path = serializers.CharField()
    stageName = serializers.CharField()
    actionName = serializers.CharField()
    category = serializers.CharField()
    provider = serializers.CharField()
    status = serializers.ChoiceField(choices=["runs", "needs", "cannot run", "unknown"])
    runsAs = serializers.CharField(help_text="The provider that runs it here.")
    needs = ReadinessSerializer(many=True, help_text="What must exist first, and how to "
                                "make it.")
    notes = serializers.ListField(child=serializers.CharField())
    nearest = serializers.CharField(help_text="For an AWS-only provider: the nearest way "
                                    "to do the same here.")


class DryRunSerializer(serializers.Serializer):
    """The answer of ``POST /api/pipelines/?dryRun=true``: nothing was saved."""

    name = serializers.CharField()
    valid = serializers.BooleanField()
    wouldCreate = serializers.BooleanField()
    canStart = serializers.BooleanField()
    actions = ActionReportSerializer(many=True)
    warnings = ProblemSerializer(many=True)


class ArnListField(serializers.ListField):
    """The ARNs a connection answers to, read from its ConnectionArn rows."""

    def get_attribute(self, instance):
        return [row.arn for row in instance.arns.all()]


class ConnectionSerializer(serializers.ModelSerializer):
    """A connection; ``token`` and ``sshKey`` are write-only and never answered.

    Validation beyond types is ``pipelines.services.connection_save``'s, so the
    admin, the API and ``import_connections`` refuse the same things.
    """

    baseUrl = serializers.CharField(source="base_url")
    arns = ArnListField(child=serializers.CharField(), required=False,
                                 help_text="ConnectionArn values (or codecommit:REPOSITORY) "
                                 "this connection answers to; * matches anything.")
    provider = serializers.ChoiceField(choices=ConnectionProvider.choices,
                                       default=ConnectionProvider.GIT)
    username = serializers.CharField(required=False, allow_blank=True,
                                     help_text="User name a token is sent with; empty: the "
                                     "provider's usual one.")
    credential = serializers.SerializerMethodField(
        help_text='"token", "ssh_key" or "none": which credential is stored.')
    token = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                  trim_whitespace=True, style={"input_type": "password"})
    sshKey = serializers.CharField(source="ssh_key", write_only=True, required=False,
                                   allow_blank=True, trim_whitespace=False)
    clearCredential = serializers.BooleanField(source="clear_credential", write_only=True,
                                               required=False, default=False)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Connection
        fields = ["name", "provider", "baseUrl", "arns", "username", "credential", "token",
                  "sshKey", "clearCredential", "createdAt", "updatedAt"]
        # The service checks the name (and its uniqueness) with the other fields.
        extra_kwargs = {"name": {"validators": []}}

    def get_credential(self, connection) -> str:
        return connection.credential_kind or "none"

class BuildProjectSerializer(serializers.Serializer):
    """A build project in CodeBuild's shape (``services.build_project_export``)."""

    name = serializers.CharField()
    description = serializers.CharField(required=False)
    source = serializers.DictField(required=False, help_text='{"buildspec": a path in the '
                                   "primary source, or an inline buildspec}")
    environment = serializers.DictField(required=False, help_text='{"computeType", '
                                        '"environmentVariables": [{name, value, type}]}')
    timeoutInMinutes = serializers.IntegerField(required=False)  # noqa: N815 (API vocabulary)
    cache = serializers.DictField(required=False, help_text='{"paths": [...]}')
    network = serializers.CharField(required=False, help_text='"host" (default) or "none": '
                                    "none gives the project's builds no network at all")

    def to_representation(self, instance):
        from pipelines.services import build_project_export

        return build_project_export(instance)
