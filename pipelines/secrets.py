"""Connection credentials at rest: Fernet tokens under a key derived from SECRET_KEY.

Rotating ``SECRET_KEY`` keeps credentials readable as long as the old key stays
in ``SECRET_KEY_FALLBACKS`` (MultiFernet tries each). Only the Git runner
decrypts, in the worker, right before it runs git.
"""

import base64
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

_KEY_SALT = "pipelines.Connection.credential_encrypted"

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


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([
        Fernet(base64.urlsafe_b64encode(
            salted_hmac(_KEY_SALT, "fernet", secret=key, algorithm="sha256").digest()))
        for key in keys
    ])


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialUnreadable(
            "the connection's credential cannot be decrypted (SECRET_KEY changed?): set it "
            "again") from exc
