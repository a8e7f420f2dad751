"""Who signed an ``/aws/`` request: the access key, checked with SigV4, and its user."""

import logging
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone

from awsapi import errors, services, sigv4
from awsapi.models import AccessKey

logger = logging.getLogger("conveyor.awsapi")


@dataclass(frozen=True)
class Caller:
    """The signer of a verified request; ``region`` is the one its credential is scoped to."""

    user: object
    access_key: AccessKey
    region: str


def authenticate(request: HttpRequest) -> Caller:
    """Verify the request's signature and return its caller, or raise ``AwsError``.

    Nothing is written unless the signature is good (then ``last_used_at``).
    """
    auth = sigv4.parse_authorization(request.headers.get("Authorization"))
    key = (AccessKey.objects.select_related("user")
           .filter(access_key_id=auth.access_key_id, is_active=True).first())
    if key is None or not key.user.is_active:
        raise errors.unrecognized_client()
    try:
        secret = services.access_key_secret(access_key=key)
    except services.AccessKeyUnusable:
        logger.warning("access key %s cannot be decrypted: was SECRET_KEY changed without "
                       "keeping the old one in SECRET_KEY_FALLBACKS?", key.access_key_id)
        raise errors.unrecognized_client() from None
    sigv4.verify(
        auth=auth,
        secret=secret,
        method=request.method,
        path=request.path,
        query=request.META.get("QUERY_STRING", ""),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=request.body,
        now=timezone.now(),
    )
    services.access_key_touch(access_key=key)
    return Caller(user=key.user, access_key=key, region=auth.region)
