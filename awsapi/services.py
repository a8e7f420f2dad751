"""Access keys: every operation that creates, deactivates or uses one.

The admin, ``manage.py create_access_key`` and the ``/aws/`` endpoint call these
functions and hold no rules of their own.
"""

import base64
import secrets
import string
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from awsapi.models import AccessKey
from observability.audit import audit_record
from observability.models import AuditAct

_ID_ALPHABET = string.ascii_uppercase + string.digits
# The same alphabet AWS uses for secrets, 40 characters long.
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_KEY_SALT = "awsapi.AccessKey.secret_encrypted"
# last_used_at is a hint for people, not an audit trail: writing it at most once
# a minute keeps a busy script from turning every read into a row update.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccessKeyUnusable(Exception):
    """The stored secret cannot be decrypted (SECRET_KEY changed with no fallback)."""


def _fernet() -> MultiFernet:
    """Fernet keys derived from SECRET_KEY, then each of SECRET_KEY_FALLBACKS."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([
        Fernet(base64.urlsafe_b64encode(
            salted_hmac(_KEY_SALT, "fernet", secret=key, algorithm="sha256").digest()
        ))
        for key in keys
    ])


def _new_id() -> str:
    return "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def access_key_create(*, user, by=None) -> tuple[AccessKey, str]:
    """Make an active access key for ``user``; returns (key, secret).

    ``by`` is who made it (an administrator in the admin; None from the command
    line), recorded in the audit trail with the key's id, never its secret.

    The secret is returned here and only here: it is stored encrypted (see
    ``AccessKey``) and no other function gives it out.
    """
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    token = _fernet().encrypt(secret.encode()).decode()
    # 36^16 ids make a collision unlikely, not impossible: the unique index decides.
    for _attempt in range(5):
        try:
            with transaction.atomic():
                key = AccessKey.objects.create(
                    user=user, access_key_id=_new_id(), secret_encrypted=token
                )
                audit_record(action=AuditAct.KEY_CREATE, user=by,
                             detail={"accessKeyId": key.access_key_id,
                                     "user": user.get_username()})
            return key, secret
        except IntegrityError:
            continue
    raise RuntimeError("could not find an unused access key id")


def access_key_deactivate(*, access_key: AccessKey, by=None) -> bool:
    """Deactivate a key for good; True if it was active. Requests signed with it then fail."""
    with transaction.atomic():
        changed = AccessKey.objects.filter(pk=access_key.pk, is_active=True).update(
            is_active=False)
        if changed:
            audit_record(action=AuditAct.KEY_DEACTIVATE, user=by,
                         detail={"accessKeyId": access_key.access_key_id,
                                 "user": access_key.user.get_username()})
    access_key.refresh_from_db(fields=["is_active"])
    return bool(changed)


def access_key_secret(*, access_key: AccessKey) -> str:
    """The decrypted secret, for verifying a signature in this process only."""
    try:
        return _fernet().decrypt(access_key.secret_encrypted.encode()).decode()
    except InvalidToken as exc:
        raise AccessKeyUnusable(access_key.access_key_id) from exc


def access_key_touch(*, access_key: AccessKey) -> None:
    """Record that the key was just used (at most one write per LAST_USED_RESOLUTION)."""
    now = timezone.now()
    AccessKey.objects.filter(pk=access_key.pk).exclude(
        last_used_at__gt=now - LAST_USED_RESOLUTION
    ).update(last_used_at=now)
