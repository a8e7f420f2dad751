"""Finding 8 of the security review: a Content-Security-Policy on every page, HSTS when
served over TLS (CONVEYOR_HTTPS; docs/deploy.md)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dashboard_pages_carry_a_csp_without_inline_scripts_or_styles(client, viewer):
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "unsafe-inline" not in policy
    assert directives["frame-ancestors"] == "'none'"


def test_the_browsable_api_allows_its_own_inline_styles_by_hash_and_nothing_more(client,
                                                                                   viewer):
    from config.browsable_api import csp_hash

    client.force_login(viewer)
    page = client.get("/api/pipelines/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    policy = page["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert "unsafe-inline" not in policy
    elements = re.findall(r"<style>(.*?)</style>", html, re.S)
    attributes = re.findall(r'\sstyle="([^"]*)"', html)
    assert elements and attributes, "DRF's page no longer has inline styles: drop the hashes"
    # What a browser would check: every inline style on the page matches a hash.
    assert [t for t in elements if csp_hash(t) not in directives["style-src"]] == []
    assert directives["style-src-attr"][0] == "'unsafe-hashes'"
    assert [t for t in attributes if csp_hash(t) not in directives["style-src-attr"]] == []
    assert len(directives["style-src"]) == 2    # 'self' and the one stylesheet
    # The same view's JSON, like every other page, keeps the site's policy.
    plain = client.get("/api/pipelines/", HTTP_ACCEPT="application/json")
    assert plain["Content-Security-Policy"] == client.get("/")["Content-Security-Policy"]
    assert "style-src-attr" not in plain["Content-Security-Policy"]


def test_the_sign_in_page_carries_the_csp(client):
    assert "default-src 'self'" in client.get("/login/")["Content-Security-Policy"]


def test_no_template_holds_an_inline_script_style_or_event_handler():
    found = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"<style\b", r"\sstyle=",
                        r"\son[a-z]+\s*=", r"javascript:"):
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}"
                      for m in re.finditer(pattern, text)]
    assert found == []


def _served_over_tls(setting: str) -> str:
    script = (
        "from django.test import Client\n"
        "answer = Client().get('/login/', HTTP_X_FORWARDED_PROTO='https', secure=True)\n"
        "print(answer.status_code, answer.headers.get('Strict-Transport-Security'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["CONVEYOR_HTTPS"] = setting
    result = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return result.stdout.strip().splitlines()[-1]


def test_hsts_is_sent_when_served_over_tls():
    assert _served_over_tls("true") == "200 max-age=31536000; includeSubDomains"


def test_no_hsts_without_tls():
    assert _served_over_tls("false") == "200 None"
