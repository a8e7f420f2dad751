"""Secret configuration values: stored encrypted, never shown, kept when sent back masked.

A provider declares which configuration keys hold secrets (``Runner.secret_configuration_keys``,
registered in ``pipelines.providers``; the Invoke Webhook's ``Secret``). Saving a definition
(``pipeline_save``, the one door for every surface) seals each such value: it is stored as
``conveyor:sealed:<Fernet token>`` in the pipeline's document, its versions and its Action
rows, and given back only to the runner (``RunContext.configuration`` unseals). Every
answer that shows a definition or an action's configuration passes through ``mask``, which
shows ``****`` as AWS does. Sending ``****`` back on update keeps the stored value; a
reference (the Webhook's ``SecretName``, a SECRETS_MANAGER environment variable) names a
secret kept outside Conveyor's database instead.

Connection credentials (a token or an SSH key) are kept the same way, under their own
derived key (``encrypt``/``decrypt``); only the Git runner decrypts them, in the worker,
right before it runs git.

Keys: Fernet keys derived from ``SECRET_KEY`` then each of ``SECRET_KEY_FALLBACKS``: to
rotate, move the old key to ``SECRET_KEY_FALLBACKS`` and set a new ``SECRET_KEY``; values
sealed under the old key still open, and are sealed under the new one when next changed.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

from pipelines import providers

PREFIX = "conveyor:sealed:"
MASK = "****"
_SALT = "pipelines.secrets"
_CONNECTION_SALT = "pipelines.Connection.credential_encrypted"
# Environment variable names that say "credential": stored PLAINTEXT, they are a warning.
CREDENTIAL_NAME_RE = re.compile(
    r"(SECRET|PASSW(OR)?D|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY|AUTH)", re.I)


class SecretUnusable(ValueError):
    """A sealed value cannot be opened (not sealed here, or SECRET_KEY changed without
    the old key in SECRET_KEY_FALLBACKS)."""


def _fernet(salt: str = _SALT) -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([
        Fernet(base64.urlsafe_b64encode(
            salted_hmac(salt, "fernet", secret=key, algorithm="sha256").digest()))
        for key in keys
    ])


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(value: str) -> str:
    return PREFIX + _fernet().encrypt(value.encode()).decode()


def unseal(value: str) -> str:
    """The plaintext of a sealed value; any other value is returned as it is."""
    if not is_sealed(value):
        return value
    try:
        return _fernet().decrypt(value[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretUnusable("a secret value sealed with another SECRET_KEY") from None


def mask(data: Any) -> Any:
    """``data`` with every sealed value replaced by ``****`` (a copy; any nesting)."""
    if isinstance(data, dict):
        return {k: mask(v) for k, v in data.items()}
    if isinstance(data, list):
        return [mask(v) for v in data]
    return MASK if is_sealed(data) else data


def secret_keys(action: dict) -> frozenset[str]:
    type_id = action.get("actionTypeId") or {}
    spec = providers.spec_for(type_id) if isinstance(type_id, dict) else None
    return spec.secret_keys if spec is not None else frozenset()


def _previous_values(previous: dict | None) -> dict[tuple[str, str, str], str]:
    found = {}
    for stage in (previous or {}).get("stages", []):
        for action in stage.get("actions", []):
            for key, value in (action.get("configuration") or {}).items():
                if is_sealed(value):
                    found[(stage["name"], action["name"], key)] = value
    return found


def seal_document(doc: dict, previous: dict | None) -> tuple[dict, list[tuple[str, str]]]:
    """A normalized document with its secret values sealed; (document, errors by path).

    ``previous`` is the stored document (None for a new pipeline): ``****`` takes its
    value for the same stage, action and key; a plaintext equal to the stored secret keeps
    the stored token, so saving an unchanged document stays a no-op.
    """
    stored = _previous_values(previous)
    problems: list[tuple[str, str]] = []
    for i, stage in enumerate(doc.get("stages", [])):
        for j, action in enumerate(stage.get("actions", [])):
            config = action.get("configuration") or {}
            for key in sorted(secret_keys(action) & config.keys()):
                value = config[key]
                path = f"stages[{i}].actions[{j}].configuration.{key}"
                old = stored.get((stage["name"], action["name"], key))
                if not isinstance(value, str) or value == "":
                    continue
                if value == MASK:
                    if old is None:
                        problems.append((path, f"{MASK} stands for the stored secret, but "
                                               "this action has none: give the value"))
                    else:
                        config[key] = old
                elif is_sealed(value):
                    try:
                        unseal(value)
                    except SecretUnusable:
                        problems.append((path, "is not a secret sealed by this server: give "
                                               "the value itself"))
                elif "#{" in value:
                    continue  # a variable reference, resolved when the action runs
                elif old is not None and _opens_to(old, value):
                    config[key] = old
                else:
                    config[key] = seal(value)
    return doc, problems


def _opens_to(sealed: str, value: str) -> bool:
    try:
        return unseal(sealed) == value
    except SecretUnusable:
        return False


def credential_warnings(doc: dict) -> list[tuple[str, str]]:
    """PLAINTEXT environment variables whose name says "credential", by path."""
    found = []
    for i, stage in enumerate(_list(doc, "stages")):
        for j, action in enumerate(_list(stage, "actions")):
            for k, item in enumerate(_list(action, "environmentVariables")):
                if not isinstance(item, dict) or item.get("type", "PLAINTEXT") != "PLAINTEXT":
                    continue
                name, value = item.get("name"), item.get("value")
                if (isinstance(name, str) and CREDENTIAL_NAME_RE.search(name)
                        and isinstance(value, str) and value and "#{" not in value):
                    found.append((
                        f"stages[{i}].actions[{j}].environmentVariables[{k}].value",
                        f'"{name}" looks like a credential stored as PLAINTEXT: everyone who '
                        "can view the pipeline reads it; use type SECRETS_MANAGER with the "
                        "secret's name"))
    return found


def _list(parent: Any, key: str) -> list:
    """``parent[key]`` if it is a list, else nothing (validation reports the shape)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, list) else []


# --- Connection credentials ------------------------------------------------
# The user name a token is sent with over HTTP when the connection names none:
# what each forge documents for token clones.
TOKEN_USERS = {
    "GitHub": "x-access-token",
    "GitLab": "oauth2",
    "Bitbucket": "x-token-auth",
    "Gitea": "oauth2",
    "Git": "git",
}


class CredentialUnreadable(Exception):
    """The stored credential cannot be decrypted (SECRET_KEY changed with no fallback)."""


@dataclass(frozen=True)
class Credential:
    """A decrypted credential: ``kind`` is "token" or "ssh_key"."""

    kind: str
    secret: str
    username: str = ""

    def __repr__(self) -> str:  # a credential in a traceback or a log shows no secret
        return f"Credential(kind={self.kind!r}, username={self.username!r}, secret=***)"


def encrypt(text: str) -> str:
    return _fernet(_CONNECTION_SALT).encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(_CONNECTION_SALT).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialUnreadable(
            "the connection's credential cannot be decrypted (SECRET_KEY changed?): set it "
            "again") from exc
