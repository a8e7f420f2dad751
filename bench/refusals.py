"""How long Conveyor takes to refuse the hostile bodies of the security review (issue 19).

Each request goes through the whole Django stack in-process (the test Client, DEBUG off,
SQLite in a fresh folder under /tmp), as an anonymous caller or as a signed-in owner with
an API token. Prints, per case: the answer's status, the median and the worst of
``--runs`` requests in milliseconds, and the load average.

    .venv/bin/python bench/refusals.py [--runs 5]

Before the fix (the review's figures, on `make run`): the 7-level alias document took 22 s
of CPU unauthenticated and 19 s from an owner; 50,000 nested "[" and 1,500 nested YAML
mappings answered 500.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def laughs(levels: int) -> str:
    lines = ['a0: &a0 "lol"']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false",
                       "CONVEYOR_VAR_DIR": tempfile.mkdtemp(prefix="conveyor-refusals-")})
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)  # every refusal would log "Bad Request"
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from config.api_auth import token_create

    call_command("migrate", verbosity=0)
    owner = User.objects.create_superuser("owner", "owner@example.com", "unused-password-1")
    _, key = token_create(user=owner)
    signed = {"HTTP_AUTHORIZATION": f"Token {key}"}
    cases = [
        ("7-level YAML aliases, anonymous, POST /api/jobs/x/result", "/api/jobs/x/result",
         laughs(7), "application/yaml", {}),
        ("7-level YAML aliases, owner, POST /api/pipelines/", "/api/pipelines/",
         laughs(7), "application/yaml", signed),
        ("50,000 nested [ as JSON, owner", "/api/pipelines/",
         "[" * 50_000 + "]" * 50_000, "application/json", signed),
        ("50,000 nested [ as YAML, owner", "/api/pipelines/",
         "[" * 50_000 + "]" * 50_000, "application/yaml", signed),
        ("1,500 nested YAML mappings, owner", "/api/pipelines/",
         "{k: " * 1500 + "v" + "}" * 1500, "application/yaml", signed),
        ("60,000 YAML values, owner", "/api/pipelines/",
         "x: [" + ", ".join(["1"] * 60_000) + "]\n", "application/yaml", signed),
        ("2 MiB JSON body, owner", "/api/pipelines/",
         '"' + "x" * (2 << 20) + '"', "application/json", signed),
    ]
    client = Client()
    client.get("/healthz")  # the first request imports the URLconf and views: not timed
    print(f"{'case':58} status  median ms  worst ms")
    for label, path, body, content_type, headers in cases:
        times, status = [], None
        for _ in range(args.runs):
            started = time.perf_counter()
            answer = client.generic("POST", path, body, content_type=content_type, **headers)
            times.append((time.perf_counter() - started) * 1000)
            status = answer.status_code
        print(f"{label:58} {status:>6} {statistics.median(times):>10.1f} {max(times):>9.1f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
