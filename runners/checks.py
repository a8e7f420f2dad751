"""Helpers the runners' configuration checkers share.

A checker runs on any document, valid or not: the general validation has
already reported a configuration that is not an object or a value that is not
a string, at its path, so a checker sees a dict of strings here and only adds
the provider's own rules.
"""

from __future__ import annotations


def configuration_of(action_doc) -> dict[str, str]:
    """The action's configuration as a dict of strings (whatever the document holds)."""
    config = action_doc.get("configuration") if isinstance(action_doc, dict) else None
    if not isinstance(config, dict):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in config.items()
            if v is not None}


def list_of(value) -> list:
    """``value`` if it is a list, else an empty list (its type is reported elsewhere)."""
    return value if isinstance(value, list) else []
