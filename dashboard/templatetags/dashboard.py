"""Small formatting helpers of the dashboard's templates (no queries, no rules)."""

from __future__ import annotations

import re
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()


def human_seconds(value: float | None) -> str:
    """3 → "3 s", 75 → "1 min 15 s", 3725 → "1 h 2 min"; sub-second values in ms."""
    if value is None:
        return "–"
    value = float(value)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def duration(value: float | None) -> str:
    return human_seconds(value)


@register.simple_tag
def elapsed(start: datetime | None, end: datetime | None, now: datetime | None = None) -> str:
    """How long from ``start`` to ``end``; while it runs, a span the page's script ticks."""
    if start is None:
        return "–"
    text = human_seconds(((end or now or timezone.now()) - start).total_seconds())
    if end is not None:
        return text
    return format_html('<span class="elapsed" data-start="{}">{}</span>', start.isoformat(), text)


@register.filter
def short_revision(value: str) -> str:
    """A commit id shortened like git does; other revision ids as they are."""
    value = value or ""
    if len(value) == 40 and all(c in "0123456789abcdef" for c in value.lower()):
        return value[:8]
    return value if len(value) <= 24 else value[:21] + "…"


@register.filter
def first_line(value: str) -> str:
    return (value or "").strip().splitlines()[0] if (value or "").strip() else ""


@register.filter
def get(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


# Where a name may break: between a lower-case letter or digit and a capital, and after
# a dot, an underscore or a hyphen.
_NAME_JOINTS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[._-])(?=.)")


@register.filter
def word_breaks(value: str) -> str:
    """A CamelCase or dotted name, escaped, with ``<wbr>`` between its words
    ("PromoteTo<wbr>Production"): in a narrow card it breaks there, never inside a word."""
    return mark_safe("<wbr>".join(escape(part) for part in _NAME_JOINTS.split(value or "")))
