"""Finding 3 of the security review: DEBUG is off unless asked for, and the settings
docs/deploy.md gives pass Django's deployment checks."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env.update(extra)
    return env


def deploy_block() -> dict[str, str]:
    """The variables of the ```sh block under "HTTPS" in docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## HTTPS", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    pairs = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    assert pairs["DEBUG"] == "false" and pairs["CONVEYOR_HTTPS"] == "true"
    return pairs


def test_the_deploy_documents_settings_pass_manage_py_check_deploy():
    env = _env(**deploy_block())
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_debug_set_an_error_shows_no_debug_page():
    script = (
        "from django.test import Client\n"
        "from django.conf import settings\n"
        "answer = Client().get('/no-such-page/')\n"
        "print(settings.DEBUG, answer.status_code, b'URLconf' in answer.content)\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script], cwd=ROOT,
        env=_env(), capture_output=True, text=True, timeout=120)
    assert result.stdout.split()[-3:] == ["False", "404", "False"], result.stdout + result.stderr
