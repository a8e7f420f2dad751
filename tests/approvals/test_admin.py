"""The admin shows approval requests and decisions, and changes nothing."""

from approvals import services
from tests.approvals.conftest import release_pipeline


def test_an_owner_sees_requests_and_decisions_read_only(release, client, owner, alice):
    request = release.to_approval(release_pipeline())
    release.call(services.approval_decide, request=request, user=alice, status="Approved",
                 summary="fine", surface="api")
    decision = request.decisions.get()
    client.force_login(owner)
    listing = client.get("/admin/approvals/approvalrequest/")
    assert listing.status_code == 200 and "Production" in listing.content.decode()
    page = client.get(f"/admin/approvals/approvalrequest/{request.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and "fine" in html and "alice" in html
    assert 'name="_save"' not in html
    assert client.post(f"/admin/approvals/approvalrequest/{request.pk}/change/",
                       {"status": "Rejected"}).status_code == 403
    assert client.get("/admin/approvals/approvalrequest/add/").status_code == 403
    assert client.get(
        f"/admin/approvals/approvalrequest/{request.pk}/delete/").status_code == 403
    assert client.get(f"/admin/approvals/approvaldecision/{decision.pk}/change/").status_code \
        == 200
    assert client.get(
        f"/admin/approvals/approvaldecision/{decision.pk}/delete/").status_code == 403
    request.refresh_from_db()
    assert request.status == "Approved"
