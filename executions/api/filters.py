"""List filters of the executions API (query parameters in the API's camelCase)."""

import django_filters

from executions.choices import (
    ActionExecutionStatus,
    ExecutionType,
    PipelineExecutionStatus,
    TriggerType,
)
from executions.models import ActionExecution, PipelineExecution


class PipelineExecutionFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=PipelineExecutionStatus.choices,
        help_text="Only executions with this status (repeat the parameter for several).")
    executionType = django_filters.ChoiceFilter(  # noqa: N815 (the API's parameter name)
        field_name="execution_type", choices=ExecutionType.choices)
    triggerType = django_filters.ChoiceFilter(  # noqa: N815
        field_name="trigger_type", choices=TriggerType.choices)

    class Meta:
        model = PipelineExecution
        fields = ["status", "executionType", "triggerType"]


class ActionExecutionFilter(django_filters.FilterSet):
    stageName = django_filters.CharFilter(field_name="stage_name")  # noqa: N815
    actionName = django_filters.CharFilter(field_name="action_name")  # noqa: N815
    status = django_filters.MultipleChoiceFilter(choices=ActionExecutionStatus.choices)

    class Meta:
        model = ActionExecution
        fields = ["stageName", "actionName", "status"]
