"""``{% pipeline_allows pipeline "own" as can_own %}``: teams.access for templates."""

from django import template

from teams import access

register = template.Library()


@register.simple_tag(takes_context=True)
def pipeline_allows(context, pipeline, act: str) -> bool:
    request = context.get("request")
    return bool(request is not None and access.pipeline_allows(request.user, pipeline, act))
