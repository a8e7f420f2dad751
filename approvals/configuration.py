"""The Manual approval's configuration: parsing and checking, without the database.

The keys are CodePipeline's Manual approval keys plus Conveyor's own; every
value is a string, as in the definition document:

- ``CustomData``: the message reviewers read (``#{...}`` references resolved);
- ``ExternalEntityLink``: a URL to what is being approved;
- ``Reviewers``: ``"alice,group:release-managers"``; empty means anyone with the
  ``approvals.decide_approvalrequest`` permission;
- ``RequiredApprovals``: how many approvals close it (default ``"1"``);
- ``AllowSelfApproval``: whether the person who started the execution may
  approve it (``"false"`` by default);
- ``NotificationWebhook``: a URL that receives a Slack-compatible JSON POST;
- ``SupersedePendingApproval``: ``"false"`` keeps CodePipeline's behaviour
  (a waiting approval holds its stage); read by the engine (docs/semantics.md §10);
- ``NotificationArn``: accepted so AWS documents import, and ignored (no SNS here).

``timeoutInMinutes`` (on the action, not in its configuration) is 5 to 86400
for an approval; without it the engine uses the runner's
``default_timeout_minutes`` (7 days).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_MINUTES = 7 * 24 * 60
MIN_TIMEOUT_MINUTES = 5
MAX_TIMEOUT_MINUTES = 60 * 24 * 60
MAX_CUSTOM_DATA = 512  # CodePipeline's limit on CustomData

KEYS = ("CustomData", "ExternalEntityLink", "Reviewers", "RequiredApprovals",
        "AllowSelfApproval", "NotificationWebhook", "SupersedePendingApproval",
        "NotificationArn")
BOOLEANS = ("AllowSelfApproval", "SupersedePendingApproval")
URLS = ("ExternalEntityLink", "NotificationWebhook")

USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")
GROUP_PREFIX = "group:"


class ConfigurationError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Reviewers:
    """Who may decide: user names and group names; both empty = anyone permitted."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @property
    def anyone(self) -> bool:
        return not self.users and not self.groups

    def spec(self) -> str:
        return ",".join(sorted(self.users) + [GROUP_PREFIX + g for g in sorted(self.groups)])


@dataclass(frozen=True)
class ApprovalSettings:
    """The configuration of one Manual approval, parsed (values resolved)."""

    custom_data: str = ""
    external_entity_link: str = ""
    reviewers: Reviewers = Reviewers()
    required_approvals: int = 1
    allow_self_approval: bool = False
    notification_webhook: str = ""
    supersede_pending_approval: bool = True


def _has_reference(value) -> bool:
    return "#{" in str(value)


def parse_reviewers(spec: str) -> Reviewers:
    """``"alice, group:release-managers"`` → Reviewers; raises ConfigurationError."""
    users, groups = set(), set()
    for raw in (spec or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry.startswith(GROUP_PREFIX):
            name = entry[len(GROUP_PREFIX):].strip()
            if not name or len(name) > 150:
                raise ConfigurationError(f'"{entry}" names no group: write group:NAME')
            groups.add(name)
        elif USERNAME_RE.match(entry):
            users.add(entry)
        else:
            raise ConfigurationError(
                f'"{entry}" is neither a user name nor group:NAME')
    return Reviewers(frozenset(users), frozenset(groups))


def parse_bool(key: str, value) -> bool:
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ConfigurationError(f'{key} must be "true" or "false", not "{value}"')
    return text == "true"


def parse_required(value) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigurationError(
            f'RequiredApprovals must be a whole number, not "{value}"') from None
    if number < 1:
        raise ConfigurationError(f"RequiredApprovals must be at least 1, not {number}")
    return number


def check_url(key: str, value: str) -> str:
    parts = urlsplit(str(value).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f'{key} must be an http(s) URL, not "{value}"')
    return str(value).strip()


def parse(configuration: dict | None) -> ApprovalSettings:
    """Parse resolved configuration values; raises ConfigurationError on the first bad one."""
    config = configuration or {}
    reviewers = parse_reviewers(config.get("Reviewers", ""))
    required = parse_required(config.get("RequiredApprovals", "1") or "1")
    _enough_reviewers(reviewers, required)
    link = config.get("ExternalEntityLink", "") or ""
    hook = config.get("NotificationWebhook", "") or ""
    return ApprovalSettings(
        custom_data=str(config.get("CustomData", "") or ""),
        external_entity_link=check_url("ExternalEntityLink", link) if link else "",
        reviewers=reviewers,
        required_approvals=required,
        allow_self_approval=parse_bool(
            "AllowSelfApproval", config.get("AllowSelfApproval", "false") or "false"),
        notification_webhook=check_url("NotificationWebhook", hook) if hook else "",
        supersede_pending_approval=parse_bool(
            "SupersedePendingApproval",
            config.get("SupersedePendingApproval", "true") or "true"),
    )


def _enough_reviewers(reviewers: Reviewers, required: int) -> None:
    # Only named users can be counted; a group may hold any number of people.
    if not reviewers.groups and reviewers.users and len(reviewers.users) < required:
        raise ConfigurationError(
            f"RequiredApprovals is {required} but Reviewers names only "
            f"{len(reviewers.users)} reviewer{'s' if len(reviewers.users) != 1 else ''}")


def check(action_doc: dict) -> list[tuple[str, str]]:
    """Problems of a Manual approval action as (relative path, message) pairs.

    A value holding a ``#{...}`` reference is known only when the action
    starts: it is checked then (the action fails, naming the key).
    """
    problems: list[tuple[str, str]] = []
    config = action_doc.get("configuration") or {}
    if not isinstance(config, dict):
        return problems
    for key, value in config.items():
        path = f"configuration.{key}"
        if key not in KEYS:
            problems.append((path, f'"{key}" is not a configuration key of a Manual approval: '
                                   "use " + ", ".join(KEYS)))
            continue
        if not isinstance(value, str) or _has_reference(value):
            continue  # validation reports non-strings; references are checked at start
        try:
            if key in BOOLEANS:
                parse_bool(key, value)
            elif key in URLS and value.strip():
                check_url(key, value)
            elif key == "Reviewers":
                parse_reviewers(value)
            elif key == "RequiredApprovals":
                parse_required(value)
            elif key == "CustomData" and len(value) > MAX_CUSTOM_DATA:
                raise ConfigurationError(
                    f"CustomData must be at most {MAX_CUSTOM_DATA} characters, "
                    f"not {len(value)}")
        except ConfigurationError as exc:
            problems.append((path, str(exc)))
    reviewers, required = config.get("Reviewers", ""), config.get("RequiredApprovals", "1")
    if not problems and isinstance(reviewers, str) and isinstance(required, str) \
            and not _has_reference(reviewers) and not _has_reference(required):
        try:
            _enough_reviewers(parse_reviewers(reviewers), parse_required(required or "1"))
        except ConfigurationError as exc:
            problems.append(("configuration.RequiredApprovals", str(exc)))
    timeout = action_doc.get("timeoutInMinutes")
    # Validation itself checks the type and the 1..86400 range; an approval
    # also needs at least 5 minutes (CodePipeline's floor).
    if isinstance(timeout, int) and not isinstance(timeout, bool) \
            and 1 <= timeout < MIN_TIMEOUT_MINUTES:
        problems.append(("timeoutInMinutes",
                         f"an approval's timeout must be between {MIN_TIMEOUT_MINUTES} and "
                         f"{MAX_TIMEOUT_MINUTES} minutes, not {timeout}"))
    return problems
