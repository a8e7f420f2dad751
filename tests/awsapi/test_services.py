"""Access keys: made with a secret shown once, stored encrypted, deactivated for good."""

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from awsapi.models import AccessKey
from awsapi.services import (
    AccessKeyUnusable,
    access_key_create,
    access_key_deactivate,
    access_key_secret,
)


def test_a_new_key_has_an_aws_shaped_id_and_a_40_character_secret(owner):
    key, secret = access_key_create(user=owner)
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key.access_key_id)
    assert len(secret) == 40
    assert key.is_active and key.user == owner and key.last_used_at is None


def test_the_secret_is_stored_encrypted_and_decrypts_to_the_one_shown(owner):
    key, secret = access_key_create(user=owner)
    stored = AccessKey.objects.get(pk=key.pk).secret_encrypted
    assert secret not in stored
    assert access_key_secret(access_key=key) == secret


def test_keys_survive_a_secret_key_rotation_that_keeps_the_old_key_as_fallback(owner,
                                                                               settings):
    key, secret = access_key_create(user=owner)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "x" * 40
    assert access_key_secret(access_key=key) == secret
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(AccessKeyUnusable):
        access_key_secret(access_key=key)


def test_deactivating_is_one_way_and_reports_whether_it_changed_anything(owner):
    key, _ = access_key_create(user=owner)
    assert access_key_deactivate(access_key=key) is True
    assert key.is_active is False
    assert access_key_deactivate(access_key=key) is False


def test_the_database_refuses_an_id_that_is_not_aws_shaped(owner):
    with pytest.raises(IntegrityError):
        AccessKey.objects.create(user=owner, access_key_id="akia-lowercase",
                                 secret_encrypted="x")


def test_the_command_prints_the_id_and_the_secret_once(owner):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_access_key", "olivia", stdout=out, stderr=err)
    printed = dict(line.split("=", 1) for line in out.getvalue().split())
    key = AccessKey.objects.get(access_key_id=printed["AWS_ACCESS_KEY_ID"])
    assert key.user == owner
    assert access_key_secret(access_key=key) == printed["AWS_SECRET_ACCESS_KEY"]
    assert "never shown again" in err.getvalue()


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user named"):
        call_command("create_access_key", "nobody", stdout=io.StringIO())
    assert not AccessKey.objects.exists()


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_admin_creates_a_key_for_a_user_and_shows_its_secret_once(admin_client, owner):
    response = admin_client.post("/admin/awsapi/accesskey/add/", {"user": owner.pk},
                                 follow=True)
    assert response.status_code == 200
    key = AccessKey.objects.get(user=owner)
    shown = [str(m) for m in response.context["messages"]]
    secret = access_key_secret(access_key=key)
    assert any(secret in m and key.access_key_id in m for m in shown)
    # Neither the list nor the key's page shows it again.
    for url in ("/admin/awsapi/accesskey/", f"/admin/awsapi/accesskey/{key.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert key.access_key_id in page and secret not in page
        assert key.secret_encrypted not in page


def test_the_admin_deactivates_selected_keys(admin_client, owner):
    first, _ = access_key_create(user=owner)
    second, _ = access_key_create(user=owner)
    response = admin_client.post("/admin/awsapi/accesskey/", {
        "action": "deactivate", "_selected_action": [first.pk]}, follow=True)
    assert response.status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)
