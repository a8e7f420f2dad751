"""``make run`` and ``make test`` print no system-check warning on the embedded default.

``manage.py check`` alone skips the database checks; ``migrate`` (the first step of
``make run``) runs them, and printed SQLite's models.W040 on every start.
"""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_checks_migrate_runs_pass_without_a_warning():
    call_command("check", "--database", "default", "--fail-level", "WARNING")
