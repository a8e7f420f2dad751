"""``manage.py poll_sources [PIPELINE ...] [--loop] [--interval S]``: look for new commits.

Polls the Git source actions with DetectChanges "true" (of every pipeline, or
of the ones named) and starts one execution per new head commit, as the
django-q2 schedule does every CONVEYOR_POLL_SECONDS. ``--loop`` keeps polling
at any period (the schedule counts whole minutes).
"""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipelines.models import Pipeline
from triggers import changes


class Command(BaseCommand):
    help = "Start an execution for each new head commit of the pipelines' Git sources."

    def add_arguments(self, parser):
        parser.add_argument("pipelines", nargs="*", help="pipeline names (default: all)")
        parser.add_argument("--loop", action="store_true", help="keep polling until killed")
        parser.add_argument("--interval", type=float, default=None,
                            help="seconds between polls (default CONVEYOR_POLL_SECONDS)")
        parser.add_argument("--install-schedule", action="store_true",
                            help="create or update the django-q2 schedule, then exit")

    def handle(self, *args, pipelines=(), loop=False, interval=None, install_schedule=False,
               **options):
        if install_schedule:
            changes.poll_schedule_ensure()
            self.stdout.write(f"Polling every {changes.poll_seconds():g} s "
                              "(rounded up to whole minutes by django-q2).")
            return
        interval = interval or float(getattr(settings, "CONVEYOR_POLL_SECONDS", 60)) or 60
        while True:
            selected = None
            if pipelines:
                selected = list(Pipeline.objects.filter(name__in=pipelines))
                missing = set(pipelines) - {p.name for p in selected}
                if missing:
                    raise CommandError("No pipeline is named " + ", ".join(sorted(missing)))
            for name, decisions in changes.poll_sources(selected).items():
                for d in decisions:
                    if d.started or not loop:
                        what = (f"started #{d.execution.number}" if d.started
                                else d.reason)
                        self.stdout.write(f"{name} / {d.action_name or '-'}: {what}")
            if not loop:
                return
            time.sleep(interval)
