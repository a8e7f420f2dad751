"""The site's icon: browsers ask for /favicon.ico on every page, signed in or not."""

import re

import pytest


def test_favicon_ico_leads_to_the_icon_without_signing_in(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301
    icon = client.get(answer["Location"])
    assert icon.status_code == 200
    body = b"".join(icon.streaming_content) if icon.streaming else icon.content
    # An ICO directory of one image (reserved 0, type 1, count 1) holding a PNG.
    assert body[:6] == b"\x00\x00\x01\x00\x01\x00" and b"\x89PNG" in body


@pytest.mark.django_db
def test_every_page_names_the_icon_and_conveyor_in_its_title(admin_client):
    for url in ("/", "/approvals/", "/insights/", "/agents/", "/login/"):
        page = admin_client.get(url).content.decode()
        assert '<link rel="icon" href="/static/favicon.ico">' in page, url
        title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
        assert title == "Conveyor" or title.endswith(" · Conveyor"), (url, title)
