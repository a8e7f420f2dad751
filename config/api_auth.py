"""API tokens: hashed (django-rest-knox), shown once, expiring, revocable; and a back-off
for addresses that keep presenting wrong tokens.

Knox stores a SHA-512 digest of each token and the first 15 characters to find it: a
copy of the database gives no usable credential (DRF's own authtoken table kept the key
itself). Tokens last ``CONVEYOR_TOKEN_DAYS`` (default 90) unless created with another
lifetime; deleting one (admin, ``manage.py create_api_token --revoke``) revokes it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions

FAILURE_WINDOW_SECONDS = 300


def token_create(*, user, days: float | None = None) -> tuple[AuthToken, str]:
    """A new token for ``user``; returns (row, key). The key exists only in this answer.

    ``days`` None: ``CONVEYOR_TOKEN_DAYS``; 0: no expiry (an operator's explicit choice).
    """
    days = settings.CONVEYOR_TOKEN_DAYS if days is None else days
    return AuthToken.objects.create(user=user, expiry=timedelta(days=days) if days else None)


def tokens_revoke(*, user) -> int:
    """Revoke every token of ``user``; how many there were."""
    count, _ = AuthToken.objects.filter(user=user).delete()
    return count


def _failure_key(request) -> str:
    return "conveyor:token-failures:" + (request.META.get("REMOTE_ADDR") or "unknown")


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox's token check, refusing (429) an address after ``CONVEYOR_TOKEN_FAILURES``
    wrong tokens within five minutes: 256-bit keys cannot be guessed, but a client that
    keeps sending a revoked or mistyped one should hear it, and costs a lookup each time."""

    def authenticate(self, request):
        key = _failure_key(request)
        limit = settings.CONVEYOR_TOKEN_FAILURES
        if cache.get(key, 0) >= limit:
            raise exceptions.Throttled(
                FAILURE_WINDOW_SECONDS,
                detail=f"Too many wrong tokens from this address ({limit} in "
                       f"{FAILURE_WINDOW_SECONDS // 60} minutes): try again later.")
        try:
            return super().authenticate(request)
        except (exceptions.AuthenticationFailed, UnicodeDecodeError):
            cache.add(key, 0, FAILURE_WINDOW_SECONDS)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, FAILURE_WINDOW_SECONDS)
            raise exceptions.AuthenticationFailed("Invalid token.") from None


class TokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI description of ``TokenAuthentication`` (the same as DRF's token)."""

    target_class = "config.api_auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": 'Token-based authentication with required prefix "Token"'}
