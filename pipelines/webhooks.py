"""Pure rules of CodePipeline webhooks (PutWebhook): filter paths, tags, addresses.

No database here: ``pipelines.services`` stores webhooks and tags after these
functions have said what is wrong (each problem a ``Problem`` with its path),
and the hook endpoint evaluates a delivery with ``filters_match``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from pipelines.validation import Problem

MAX_TAGS = 50
# JSONPath as AWS's webhook filters use it: ``$`` then ``.name``, ``['name']``
# or ``[index]`` steps. Wildcards, slices and filter expressions select several
# values, which "matchEquals" cannot compare with one string: refused at PutWebhook.
_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")
_REFERENCE = re.compile(r"\{([A-Za-z0-9_]+)\}")


class JsonPathInvalid(ValueError):
    pass


def json_path_steps(path: str) -> list[str | int]:
    """The steps of a JSONPath (``$.ref``, ``$.pull_request['base'].ref``, ``$.commits[0].id``)."""
    if not path.startswith("$"):
        raise JsonPathInvalid("must start with $")
    steps: list[str | int] = []
    i = 1
    while i < len(path):
        m = _STEP.match(path, i)
        if m is None:
            raise JsonPathInvalid(f"cannot read {path[i:]!r} (Conveyor reads .name, "
                                  "['name'] and [index] steps; wildcards, slices and "
                                  "filters select several values)")
        name, index, quoted1, quoted2 = m.groups()
        steps.append(int(index) if index is not None
                     else name if name is not None else quoted1 if quoted1 is not None
                     else quoted2)
        i = m.end()
    return steps


def json_path_value(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data``, or None when it is not there."""
    value = data
    for step in json_path_steps(path):
        if ((isinstance(step, int) and isinstance(value, list) and step < len(value))
                or (isinstance(step, str) and isinstance(value, dict) and step in value)):
            value = value[step]
        else:
            return None
    return value


def match_text(value: Any) -> str | None:
    """A JSON value as "matchEquals" compares it (strings as they are, others as JSON)."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


# "{Branch}" in matchEquals names a configuration property of the target action
# (AWS's GitHub action calls it Branch; Conveyor's Git action BranchName).
_ALIASES = {"Branch": "BranchName", "Repo": "RepositoryUrl"}


def match_expected(match_equals: str, configuration: dict) -> str:
    """``matchEquals`` with its ``{Property}`` references read from the action's configuration."""
    def replace(m: re.Match) -> str:
        key = m.group(1)
        value = configuration.get(key, configuration.get(_ALIASES.get(key, "")))
        return str(value) if value is not None else m.group(0)

    return _REFERENCE.sub(replace, match_equals)


def filters_match(filters: list[dict], data: Any, configuration: dict) -> tuple[bool, str]:
    """Whether a delivery passes every filter rule (AWS: all must match); a reason."""
    for i, rule in enumerate(filters):
        expected = match_expected(rule["matchEquals"], configuration)
        got = match_text(json_path_value(data, rule["jsonPath"]))
        if got != expected:
            return False, (f"filters[{i}]: {rule['jsonPath']} is "
                           f"{'absent' if got is None else repr(got)}, not {expected!r}")
    return True, "every filter matches"


def filter_problems(filters: Any, configuration: dict, path: str) -> list[Problem]:
    """What is wrong with a webhook's ``filters`` (paths like ``webhook.filters[0].jsonPath``)."""
    if not isinstance(filters, list):
        return [Problem(path, "must be a list")]
    problems = []
    if len(filters) > 5:
        problems.append(Problem(path, "has more than 5 rules"))
    for i, rule in enumerate(filters):
        at = f"{path}[{i}]"
        if not isinstance(rule, dict):
            problems.append(Problem(at, "must be an object with jsonPath and matchEquals"))
            continue
        json_path, match_equals = rule.get("jsonPath"), rule.get("matchEquals")
        if not isinstance(json_path, str) or not 1 <= len(json_path) <= 150:
            problems.append(Problem(f"{at}.jsonPath", "must be a string of 1 to 150 characters"))
        else:
            try:
                json_path_steps(json_path)
            except JsonPathInvalid as exc:
                problems.append(Problem(f"{at}.jsonPath", str(exc)))
        if not isinstance(match_equals, str) or not 1 <= len(match_equals) <= 150:
            problems.append(Problem(f"{at}.matchEquals",
                                    "must be a string of 1 to 150 characters"))
            continue
        for key in _REFERENCE.findall(match_equals):
            if key not in configuration and _ALIASES.get(key) not in configuration:
                problems.append(Problem(f"{at}.matchEquals",
                                        f'"{{{key}}}" names no configuration property of the '
                                        "target action"))
        unknown = sorted(set(rule) - {"jsonPath", "matchEquals"})
        if unknown:
            problems.append(Problem(at, f"unknown member(s): {', '.join(unknown)}"))
    return problems


def ip_range_problem(value: Any) -> str | None:
    """Why an AllowedIPRange is not a CIDR block (or an address), or None."""
    if not isinstance(value, str) or not value:
        return "is required for IP authentication (a CIDR block such as 192.0.2.0/24)"
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not a CIDR block such as 192.0.2.0/24"
    return None


def address_allowed(address: str, allowed_range: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(allowed_range,
                                                                     strict=False)
    except ValueError:
        return False


def tag_problems(tags: Any, path: str = "tags") -> list[Problem]:
    """What is wrong with a list of ``{"key", "value"}`` tags, as AWS's tag rules say."""
    if not isinstance(tags, list):
        return [Problem(path, "must be a list of {key, value}")]
    problems, seen = [], set()
    for i, tag in enumerate(tags):
        at = f"{path}[{i}]"
        if not isinstance(tag, dict):
            problems.append(Problem(at, "must be an object with key and value"))
            continue
        key, value = tag.get("key"), tag.get("value")
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            problems.append(Problem(f"{at}.key", "must be a string of 1 to 128 characters"))
        elif key.lower().startswith("aws:"):
            problems.append(Problem(f"{at}.key", 'the prefix "aws:" is reserved for AWS'))
        elif key in seen:
            problems.append(Problem(f"{at}.key", f'"{key}" is given twice'))
        else:
            seen.add(key)
        if not isinstance(value, str) or len(value) > 256:
            problems.append(Problem(f"{at}.value", "must be a string of at most 256 "
                                                   "characters"))
    return problems
