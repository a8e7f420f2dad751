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
