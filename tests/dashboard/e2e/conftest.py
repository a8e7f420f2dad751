"""Browser tests: Debian's Chromium driven by Playwright against a real Conveyor.

A session-wide server is started the way ``manage.py serve`` runs it — daphne
(HTTP and websockets) and a django-q2 cluster (``qcluster``), each its own
process — on pytest-django's test database, which is a file for SQLite so the
three processes share it (PostgreSQL and Redis when ``DATABASE_URL`` and
``REDIS_URL`` are set, as in CI). Executions really run in the worker process;
the browser sees them only through the web process. Tests create their own
pipelines (unique names), so nothing is flushed between them.

Everything here is skipped, with the reason, where /usr/bin/chromium is absent
(``apt-get install chromium``; never ``playwright install``).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.live_server import Server as LiveServer
from tests.live_server import free_port

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"



@pytest.fixture(scope="session", autouse=True)
def _async_unsafe_allowed():
    """Playwright's sync API runs an event loop in this thread; the test's own ORM
    calls (creating users and pipelines, checking statuses) are still synchronous."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} "
                    "(apt-get install chromium): browser tests skipped")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("conveyor-e2e")


@pytest.fixture(scope="session")
def e2e_database(e2e_dir, django_test_environment, django_db_blocker):
    """The test database, created here for the whole session (no test transaction).

    pytest-django creates databases only for tests marked ``django_db``, whose
    transaction or flush would hide the test's writes from the server or wipe
    the personas between tests; these tests share one database instead, and
    each makes its own pipelines. SQLite: a file, which the web and worker
    processes open too (an in-memory database is private to one process).
    """
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(e2e_dir / "conveyor.sqlite3")
    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=0)


class Server(LiveServer):
    """daphne + qcluster on the test database; ``restart_web`` cuts every websocket."""

    ready_path = "/login/"

    def restart_web(self) -> None:
        self.stop_web()
        self.start_web()


@pytest.fixture(scope="session")
def conveyor(browser_type_launch_args, e2e_database, django_db_blocker, e2e_dir):
    """The running server (session-wide); skipped with the browser."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env.update({
        "SECRET_KEY": settings.SECRET_KEY,  # sessions made here are valid there
        "CONVEYOR_VAR_DIR": str(e2e_dir),
        "CONVEYOR_WORKERS": "2",
        "CONVEYOR_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    })
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":

        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        env["DATABASE_URL"] = f"{base}/{name}"
    else:
        assert str(name) == str(e2e_dir / "conveyor.sqlite3"), name
        env.pop("DATABASE_URL", None)
    server = Server(env, e2e_dir, free_port())
    try:
        server.start_worker()
        server.start_web()
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _db(django_db_blocker):
    """The test process writes straight to the shared database (no test transaction)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def people(conveyor, django_db_blocker):
    """Personas, created once: a viewer, an operator, a reviewer (also an operator)."""
    from django.contrib.auth.models import Group, User

    from tests.roles import ensure_role_groups

    with django_db_blocker.unblock():
        ensure_role_groups()
        made = {}
        for username, groups in (("vera", ["viewers"]), ("oscar", ["operators"]),
                                 ("rita", ["operators", "reviewers"])):
            user, _ = User.objects.get_or_create(username=username,
                                                 defaults={"email": f"{username}@example.com"})
            user.groups.set([Group.objects.get(name=g) for g in groups])
            made[username] = user
        return made


@pytest.fixture
def login(conveyor, people, context):
    """``login("oscar")`` signs the browser context in (a real session row)."""
    from django.test import Client

    def sign_in(username: str) -> None:
        client = Client()
        client.force_login(people[username])
        context.clear_cookies()
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                              "url": conveyor.url}])

    return sign_in


@pytest.fixture
def unique() -> str:
    return "p" + uuid.uuid4().hex[:8]


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test shows the end of the server's logs (the session's
    temporary folder, where they are, is deleted after a few runs)."""
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("conveyor") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or server is None:
        return
    for name in ("worker", "web"):
        path = server.logs / f"{name}.log"
        if path.exists():
            tail = path.read_bytes()[-6000:].decode("utf-8", errors="replace")
            report.sections.append((f"server {name}.log (end)", tail))
