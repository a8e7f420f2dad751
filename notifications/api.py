"""REST API of notification rules (``/api/notification-rules/``) and their deliveries.

Governed by the roles of the rule's pipeline's group (``teams.access``): those who
may view the pipeline read its rules, its owners make, change and delete them
(not visible: 404; visible but not an owner: 403). A rule for every pipeline (no
``pipelineName``) is the administrators' alone. A rule's ``secret`` is write-only.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS

from notifications import services
from notifications.choices import NotificationEvent, TargetKind
from notifications.models import NotificationDelivery, NotificationRule
from pipelines.api.permissions import PipelinePermissions
from pipelines.models import Pipeline
from teams.access import is_administrator, pipeline_allows, pipelines_q, visible_group_ids
from teams.choices import Act


def _may_manage(user, pipeline: Pipeline | None) -> None:
    """Refuse (403) who may not manage a rule of ``pipeline`` (None: every pipeline)."""
    if pipeline is None:
        if not is_administrator(user):
            raise PermissionDenied("Only administrators manage rules for every pipeline.")
    elif not pipeline_allows(user, pipeline, Act.OWN):
        raise PermissionDenied(f'Only owners of pipeline "{pipeline.name}" manage its rules.')


class RulePermissions(PipelinePermissions):
    """A write needs the owner role somewhere (403 before the body is looked at)."""

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and (
            request.method in SAFE_METHODS or is_administrator(request.user)
            or bool(visible_group_ids(request.user, Act.OWN)))


def _rules(user):
    """The rules ``user`` may see: of visible pipelines; for every pipeline, administrators'."""
    rules = NotificationRule.objects.select_related("pipeline")
    if is_administrator(user):
        return rules
    return rules.filter(pipelines_q(user, Act.VIEW, "pipeline__"), pipeline__isnull=False)


class NotificationRuleSerializer(serializers.ModelSerializer):
    pipelineName = serializers.CharField(source="pipeline.name", required=False,
                                         allow_null=True, default=None,
                                         help_text="Empty: every pipeline.")
    events = serializers.ListField(child=serializers.ChoiceField(NotificationEvent.choices))
    targetKind = serializers.ChoiceField(TargetKind.choices, source="target_kind")
    targetUrl = serializers.CharField(source="target_url", required=False, allow_blank=True,
                                      max_length=2000)
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                   max_length=200)
    emailTo = serializers.CharField(source="email_to", required=False, allow_blank=True,
                                    max_length=1000)

    class Meta:
        model = NotificationRule
        fields = ["id", "name", "pipelineName", "events", "targetKind", "targetUrl", "secret",
                  "emailTo", "enabled"]

    def _pipeline(self, attrs):
        name = (attrs.pop("pipeline", None) or {}).get("name")
        if name is None:
            return None
        user = self.context["request"].user
        pipeline = Pipeline.objects.filter(name=name).first()
        if pipeline is None or not pipeline_allows(user, pipeline, Act.VIEW):
            raise ValidationError({"pipelineName": [f'no pipeline is named "{name}"']})
        return pipeline

    def _save(self, rule: NotificationRule, attrs) -> NotificationRule:
        for key, value in attrs.items():
            setattr(rule, key, value)
        try:
            return services.rule_save(rule=rule)
        except services.RuleInvalid as exc:
            raise ValidationError({p.path: [p.message] for p in exc.problems}) from None

    def create(self, validated_data):
        pipeline = self._pipeline(validated_data)
        _may_manage(self.context["request"].user, pipeline)
        return self._save(NotificationRule(pipeline=pipeline), validated_data)

    def update(self, instance, validated_data):
        if "pipeline" in validated_data:
            instance.pipeline = self._pipeline(validated_data)
            _may_manage(self.context["request"].user, instance.pipeline)
        return self._save(instance, validated_data)


class NotificationDeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event_key")
    pipelineName = serializers.CharField(source="event.pipeline.name")
    nextAttemptAt = serializers.DateTimeField(source="next_attempt_at")
    lastAnswer = serializers.CharField(source="last_answer")
    createdAt = serializers.DateTimeField(source="created_at")
    deliveredAt = serializers.DateTimeField(source="delivered_at")

    class Meta:
        model = NotificationDelivery
        fields = ["id", "event", "pipelineName", "status", "attempts", "nextAttemptAt",
                  "lastAnswer", "createdAt", "deliveredAt"]


class NotificationRuleListApi(generics.ListCreateAPIView):
    """``GET`` the rules; ``POST`` a new one."""

    queryset = NotificationRule.objects.none()  # for the schema; see get_queryset
    serializer_class = NotificationRuleSerializer
    permission_classes = [RulePermissions]

    def get_queryset(self):
        return _rules(self.request.user).order_by("name")


class NotificationRuleDetailApi(generics.RetrieveUpdateDestroyAPIView):
    """One rule: read, change (``PUT``/``PATCH``), delete."""

    queryset = NotificationRule.objects.none()  # for the schema; see get_queryset
    serializer_class = NotificationRuleSerializer
    permission_classes = [RulePermissions]

    def get_queryset(self):
        return _rules(self.request.user)

    def get_object(self):
        rule = super().get_object()
        if self.request.method not in SAFE_METHODS:
            _may_manage(self.request.user, rule.pipeline)
        return rule


class NotificationDeliveryListApi(generics.ListAPIView):
    """The rule's deliveries, newest first, each with the target's last answer."""

    serializer_class = NotificationDeliverySerializer
    permission_classes = [RulePermissions]
    queryset = NotificationDelivery.objects.none()  # for the schema; see get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NotificationDelivery.objects.none()
        rule = get_object_or_404(_rules(self.request.user), pk=self.kwargs["pk"])
        return rule.deliveries.select_related("event__pipeline").order_by("-id")
