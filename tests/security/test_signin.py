"""Finding 6 of the security review: repeated wrong passwords lock sign-in (per user name
and per address, django-axes), and weak passwords are refused."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError


def sign_in(client, username, password, address="198.51.100.7"):
    return client.post("/login/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


def test_the_right_password_after_repeated_wrong_ones_is_refused(client, viewer, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "vera", "wrong-guess").status_code == 200  # form again
    assert sign_in(client, "vera", "wrong-guess").status_code == 429  # the limit
    locked = sign_in(client, "vera", "pw-vera")
    assert locked.status_code == 429
    assert "Sign-in locked" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_follows_the_user_name_to_another_address(client, viewer, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "vera", "wrong-guess", address=f"198.51.100.{i + 10}")
    assert sign_in(client, "vera", "pw-vera", address="203.0.113.50").status_code == 429


def test_an_address_guessing_many_user_names_is_locked(client, viewer, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"guess{i}", "wrong-guess", address="198.51.100.99")
    assert sign_in(client, "vera", "pw-vera", address="198.51.100.99").status_code == 429
    assert sign_in(client, "vera", "pw-vera", address="198.51.100.98").status_code == 302


def test_a_success_before_the_limit_resets_the_count(client, viewer, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "vera", "wrong-guess")
    assert sign_in(client, "vera", "pw-vera").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "vera", "wrong-guess")
    assert sign_in(client, "vera", "pw-vera").status_code == 302


@pytest.mark.parametrize("password", ["password", "12345678", "short", "vera@example.com"])
def test_weak_passwords_are_refused(password, viewer):
    with pytest.raises(ValidationError):
        validate_password(password, user=viewer)


def test_a_long_unusual_password_is_accepted(viewer):
    validate_password("tram-orbit-velvet-42", user=viewer)
