"""REST API of notification rules (``/api/notification-rules/``) and their deliveries.

Governed by the pipeline permissions: owners (``change_pipeline``) manage
rules, viewers read them. A rule's ``secret`` is write-only.
"""

from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError

from notifications import services
from notifications.choices import NotificationEvent, TargetKind
from notifications.models import NotificationDelivery, NotificationRule
from pipelines.api.permissions import PipelinePermissions
from pipelines.models import Pipeline


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
        pipeline = Pipeline.objects.filter(name=name).first()
        if pipeline is None:
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
        return self._save(NotificationRule(pipeline=pipeline), validated_data)

    def update(self, instance, validated_data):
        if "pipeline" in validated_data:
            instance.pipeline = self._pipeline(validated_data)
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

    queryset = NotificationRule.objects.select_related("pipeline").order_by("name")
    serializer_class = NotificationRuleSerializer
    permission_classes = [PipelinePermissions]


class NotificationRuleDetailApi(generics.RetrieveUpdateDestroyAPIView):
    """One rule: read, change (``PUT``/``PATCH``), delete."""

    queryset = NotificationRule.objects.select_related("pipeline")
    serializer_class = NotificationRuleSerializer
    permission_classes = [PipelinePermissions]


class NotificationDeliveryListApi(generics.ListAPIView):
    """The rule's deliveries, newest first, each with the target's last answer."""

    serializer_class = NotificationDeliverySerializer
    permission_classes = [PipelinePermissions]
    queryset = NotificationDelivery.objects.none()  # for the schema; see get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NotificationDelivery.objects.none()
        rule = get_object_or_404(NotificationRule, pk=self.kwargs["pk"])
        return rule.deliveries.select_related("event__pipeline").order_by("-id")
