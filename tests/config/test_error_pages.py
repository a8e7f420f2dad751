"""A page that is not there, or not for this user, is still a page of the site: its
header, the reason the view gave, and a way back (Django's bare "Not Found" had none)."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_missing_pipeline_says_which_and_leads_back(client, viewer):
    client.force_login(viewer)
    answer = client.get("/pipelines/nope/")
    assert answer.status_code == 404
    page = answer.content.decode()
    assert "<title>Not found · Conveyor</title>" in page
    assert 'No pipeline is named &quot;nope&quot;.' in page
    assert '<a href="/">Back to the pipelines</a>' in page
    assert f"Sign out {viewer.username}" in page        # the site's header, signed in


def test_an_address_that_matches_nothing_offers_to_sign_in(client):
    page = client.get("/no/such/page/").content.decode()
    assert "Nothing is at this address." in page and "Resolver404" not in page
    assert '<a href="/login/?next=/no/such/page/">Sign in</a>' in page


def test_a_page_for_staff_tells_a_viewer_why_not(client, viewer):
    client.force_login(viewer)
    answer = client.get("/agents/")
    assert answer.status_code == 403
    assert "The Agents page is for staff." in answer.content.decode()


def test_the_api_keeps_its_error_body(client):
    answer = client.get("/api/no-such-thing/")
    assert answer.status_code == 404 and answer.json() == {"detail": "Not found."}


def test_a_refusal_under_the_api_outside_drf_is_the_api_error_body(rf):
    from django.core.exceptions import PermissionDenied

    from config.error_pages import permission_denied

    answer = permission_denied(rf.get("/api/hooks/x/"), PermissionDenied("Only owners."))
    assert answer.status_code == 403
    assert answer.content == b'{"detail": "Only owners."}'


def test_a_missing_execution_is_named_in_words(client, viewer):
    from tests.executions.conftest import simple_pipeline

    simple_pipeline("web")
    client.force_login(viewer)
    answer = client.get("/pipelines/web/executions/999/")
    assert answer.status_code == 404
    assert "Pipeline &quot;web&quot; has no execution #999." in answer.content.decode()
