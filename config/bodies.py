"""Bounded parsing of request bodies and documents: JSON and YAML from people and machines
nobody trusts yet.

Three limits, each refused with a ``BodyRefused`` naming it (the API answers 400, or 413
for the size), in milliseconds whatever the input:

1. size: ``CONVEYOR_MAX_BODY_BYTES`` (default 1 MiB), checked by the callers that read;
2. nesting depth: ``MAX_DEPTH`` levels of objects/arrays (Python's ``json`` otherwise
   recurses until ``RecursionError``, a 500);
3. YAML aliases (``*name``) are refused and YAML values counted (``MAX_NODES``): PyYAML
   expands aliases without limit, so a 467-byte document of nested anchors became ten
   million values (the "billion laughs"). A definition never needs an alias.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.conf import settings

# A definition document nests about eight levels (stages → actions → configuration);
# 64 leaves room for any real payload (a forge's push is under 10).
MAX_DEPTH = 64
# A definition of 50 stages × 10 actions is about 7,500 values; PyYAML builds Python
# objects at roughly 20,000 values a second on a busy 2-core machine (bench/refusals.py).
MAX_NODES = 20_000
DEFAULT_MAX_BODY_BYTES = 1 << 20


class BodyRefused(ValueError):
    """The body exceeds a limit or is not valid; ``status`` is the HTTP answer (400/413)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def max_body_bytes() -> int:
    return int(getattr(settings, "CONVEYOR_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def read_bounded(stream, limit: int | None = None) -> bytes:
    """At most ``limit`` bytes of ``stream``; refuses (413) a longer body without reading it all."""
    limit = max_body_bytes() if limit is None else limit
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise BodyRefused(f"the body is larger than {limit} bytes", status=413)
    return data


def _too_deep() -> BodyRefused:
    return BodyRefused(f"the body nests objects or arrays more than {MAX_DEPTH} levels deep")


def check_depth(data: Any) -> None:
    """Refuse data nested deeper than ``MAX_DEPTH`` (iterative: no recursion to exhaust),
    and any text (a key or a value) holding a NUL character: no field accepts one, and
    PostgreSQL cannot store it (an error named at its path, not a server error)."""
    stack = [(data, 1, "$")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            children = []
            for key, child in value.items():
                if isinstance(key, str) and "\x00" in key:
                    raise _nul(path)
                children.append((child, f"{path}.{key}"))
        elif isinstance(value, list):
            children = [(child, f"{path}[{i}]") for i, child in enumerate(value)]
        else:
            if isinstance(value, str) and "\x00" in value:
                raise _nul(path)
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1, where) for child, where in children)


def _nul(path: str) -> BodyRefused:
    return BodyRefused(f"{path[:200]} holds a NUL character (\\u0000), which no field accepts")


def json_loads(text: str | bytes, **kwargs) -> Any:
    """``json.loads`` with the depth limit; ``ValueError`` (JSONDecodeError) as before."""
    try:
        data = json.loads(text, **kwargs)
    except RecursionError:
        raise _too_deep() from None
    check_depth(data)
    return data


_COUNTED = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
# libyaml's parser, when PyYAML was built with it: events come ~10x faster than from the
# pure-Python scanner, so the limits are checked before anything is built.
FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def check_yaml_events(text: str) -> None:
    """Refuse aliases, depth beyond ``MAX_DEPTH`` and more than ``MAX_NODES`` values by
    walking libyaml's parse events (no object is built); ``yaml.YAMLError`` on bad syntax."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=FAST_LOADER):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            raise BodyRefused(f"YAML aliases (*name) are not accepted (line {mark.line + 1}, "
                              f"column {mark.column + 1}): write the value out")
        if isinstance(event, _COUNTED):
            nodes += 1
            if nodes > MAX_NODES:
                raise BodyRefused(f"the YAML document has more than {MAX_NODES} values")
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
        elif isinstance(event, _CLOSE):
            depth -= 1


class BoundedSafeLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses aliases and stops at ``MAX_DEPTH``/``MAX_NODES``.

    The checks run while composing, node by node, so a refusal comes after reading
    only as much of the text as it takes to exceed the limit.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def fetch_flow_collection_start(self, TokenClass):  # noqa: N803 (PyYAML's name)
        # Flow collections ("[[[[…") are refused while scanning: the composer would see
        # them only after the scanner's look-ahead had read much more of the text.
        if self.flow_level >= MAX_DEPTH:
            raise _too_deep()
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise BodyRefused(f"YAML aliases (*name) are not accepted (line {mark.line + 1}, "
                              f"column {mark.column + 1}): write the value out")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise BodyRefused(f"the YAML document has more than {MAX_NODES} values")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _too_deep()
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
