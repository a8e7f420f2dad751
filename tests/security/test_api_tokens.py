"""Finding 5 of the security review: API tokens are stored hashed, shown once, expire,
can be revoked; a copy of the database gives no login."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken

from config.api_auth import token_create


def _command(*args) -> str:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_a_copied_token_table_holds_nothing_that_signs_in(viewer, api):
    key = _command(viewer.username)
    assert api().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuthToken._meta.db_table}")
        dump = [str(v) for row in cursor.fetchall() for v in row]
    assert not any(key in value for value in dump)
    for stolen in dump:
        answer = api().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {stolen}")
        assert answer.status_code == 401


def test_a_token_expires(viewer, api):
    row, key = token_create(user=viewer, days=1)
    assert row.expiry - timezone.now() > timedelta(hours=23)
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert api().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


def test_new_tokens_expire_after_the_configured_days(viewer, settings):
    settings.CONVEYOR_TOKEN_DAYS = 30
    row, _ = token_create(user=viewer)
    assert timedelta(days=29) < row.expiry - timezone.now() <= timedelta(days=30)


def test_revoking_a_users_tokens_ends_them(viewer, api):
    key = _command(viewer.username)
    assert _command(viewer.username, "--revoke") == "Revoked 1 token(s) of vera."
    assert api().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


def test_the_admin_lists_a_users_tokens_on_the_users_page(client, viewer, db):
    from django.contrib.auth.models import User

    token_create(user=viewer)
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root-long-enough")
    client.force_login(admin)
    page = client.get(f"/admin/auth/user/{viewer.pk}/change/")
    assert page.status_code == 200
    assert "API tokens" in page.content.decode()
    assert viewer.auth_token_set.get().token_key in page.content.decode()


def test_an_address_sending_wrong_tokens_is_slowed_down(api, settings, db):
    settings.CONVEYOR_TOKEN_FAILURES = 3
    from django.core.cache import cache

    cache.clear()
    client = api()
    codes = [client.get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token wrong{i}",
                        REMOTE_ADDR="203.0.113.9").status_code for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    answer = client.get("/api/pipelines/", HTTP_AUTHORIZATION="Token wrong",
                        REMOTE_ADDR="203.0.113.9")
    assert "Too many wrong tokens" in answer.json()["detail"]
    # Another address is not affected.
    assert client.get("/api/pipelines/", HTTP_AUTHORIZATION="Token wrong",
                      REMOTE_ADDR="203.0.113.10").status_code == 401
    cache.clear()


@pytest.mark.parametrize("header", [b"Token \xff\xfe", "Token a b"])
def test_a_malformed_token_header_answers_401(api, header, db):
    assert api().get("/api/pipelines/", HTTP_AUTHORIZATION=header).status_code == 401


def test_the_token_admin_revokes_tokens_but_makes_none(client, viewer, api, db):
    from django.contrib.auth.models import User

    _, key = token_create(user=viewer)
    row = viewer.auth_token_set.get()
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root-long-enough")
    client.force_login(admin)
    listing = client.get("/admin/knox/authtoken/")
    assert listing.status_code == 200
    assert row.digest in listing.content.decode()
    assert "/admin/knox/authtoken/add/" not in listing.content.decode()
    assert client.get("/admin/knox/authtoken/add/").status_code == 403
    made = client.post("/admin/knox/authtoken/add/", {"user": viewer.pk, "expiry": ""})
    assert made.status_code == 403
    assert AuthToken.objects.count() == 1

    deleted = client.post(f"/admin/knox/authtoken/{row.digest}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not AuthToken.objects.exists()
    assert api().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
