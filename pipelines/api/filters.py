"""List filters of the pipelines API (query parameters in the API's camelCase)."""

import django_filters

from pipelines.choices import ExecutionMode
from pipelines.models import Pipeline


class PipelineFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(field_name="name", help_text="Exact pipeline name.")
    nameContains = django_filters.CharFilter(  # noqa: N815 (the API's parameter name)
        field_name="name", lookup_expr="icontains", help_text="Part of the name, any case."
    )
    executionMode = django_filters.ChoiceFilter(  # noqa: N815
        field_name="execution_mode", choices=ExecutionMode.choices
    )
    ordering = django_filters.OrderingFilter(
        fields=(("updated_at", "updated"), ("created_at", "created"), ("name", "name")),
        help_text="Default: -updated (most recently changed first).",
    )

    class Meta:
        model = Pipeline
        fields = ["name", "nameContains", "executionMode"]
