"""Access keys for the AWS-compatible endpoint (``/aws/``).

An access key is what boto3 and aws-cli sign requests with (Signature Version 4).
It belongs to one user, whose Django permissions decide what the key may do.
"""

from django.conf import settings
from django.db import models

ACCESS_KEY_ID_PATTERN = r"^AKIA[A-Z0-9]{16}$"


class AccessKey(models.Model):
    """An access key id and its secret, usable while ``is_active``.

    Why the secret is stored encrypted rather than hashed: SigV4 derives the
    signing key as an HMAC chain *keyed by the raw secret*
    (``HMAC("AWS4" + secret, date)`` → region → service → "aws4_request"), so
    verifying a signature needs the secret itself; a one-way hash could never
    check one. ``secret_encrypted`` holds it as a Fernet token under a key derived
    from ``SECRET_KEY`` (``SECRET_KEY_FALLBACKS`` still decrypt, so the Django
    key can be rotated), which means a leaked database dump or backup alone does
    not yield usable keys. The plain secret is shown once, when the key is made,
    and never again: no page, command or API reads it back.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys"
    )
    access_key_id = models.CharField(max_length=20, unique=True, editable=False)
    secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(access_key_id__regex=ACCESS_KEY_ID_PATTERN),
                name="awsapi_accesskey_id_format",
            ),
        ]

    def __str__(self) -> str:
        return self.access_key_id
