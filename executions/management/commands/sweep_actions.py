"""``manage.py sweep_actions [--loop]``: end actions whose worker was lost or that timed out."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from executions import engine


class Command(BaseCommand):
    help = ("Fail actions whose worker stopped renewing its lease and actions past their "
            "timeout; hand out again actions no worker claimed. Once, or every "
            "CONVEYOR_SWEEP_SECONDS with --loop.")

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep sweeping until killed")
        parser.add_argument("--interval", type=float, default=None,
                            help="seconds between sweeps (default CONVEYOR_SWEEP_SECONDS)")

    def handle(self, *args, loop=False, interval=None, **options):
        interval = interval or float(getattr(settings, "CONVEYOR_SWEEP_SECONDS", 60))
        while True:
            report = engine.sweep()
            if report.lost or report.timed_out or report.redispatched or not loop:
                self.stdout.write(f"lost {report.lost}, timed out {report.timed_out}, "
                                  f"redispatched {report.redispatched}")
            if not loop:
                return
            time.sleep(interval)
