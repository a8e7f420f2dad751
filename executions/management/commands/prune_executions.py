"""``manage.py prune_executions [--days N] [--batch-size 500] [--dry-run]``.

Deletes ended executions older than N days (default ``CONVEYOR_RETENTION_DAYS``)
with their logs and the artifact contents nothing else references, in batches
(``executions.retention``), as the daily django-q2 schedule does.
``--install-schedule`` creates, updates or removes that schedule and exits.
"""

from django.core.management.base import BaseCommand, CommandError

from executions import retention


class Command(BaseCommand):
    help = ("Delete ended executions older than N days, with their logs and unreferenced "
            "artifacts, in batches (default: CONVEYOR_RETENTION_DAYS; 0 keeps everything).")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="age in days (default CONVEYOR_RETENTION_DAYS)")
        parser.add_argument("--batch-size", type=int, default=retention.DEFAULT_BATCH_SIZE,
                            help="executions deleted per transaction (default 500)")
        parser.add_argument("--dry-run", action="store_true",
                            help="count what would be deleted; delete nothing")
        parser.add_argument("--install-schedule", action="store_true",
                            help="create/update/remove the daily django-q2 schedule, then exit")

    def handle(self, *args, days=None, batch_size=500, dry_run=False, install_schedule=False,
               **options):
        if install_schedule:
            retention.retention_schedule_ensure()
            days = retention.retention_days()
            self.stdout.write(f"Pruning daily executions older than {days} day(s)." if days
                              else "Retention is off: no prune schedule.")
            return
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        report = retention.executions_prune(days=days, batch_size=batch_size, dry_run=dry_run)
        self.stdout.write(str(report))
        for error in report.errors:
            self.stderr.write(f"could not delete {error}")
