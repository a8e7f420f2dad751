"""Pure rules of pipeline schedules: is a cron expression valid, when are its ticks.

Cron expressions have five fields (minute hour day-of-month month
day-of-week) and are read by cronsim in the schedule's time zone, so "0 2 * * *"
in Europe/Paris is 02:00 Paris time all year round; on the day the clocks go
forward and 02:00 does not exist, cronsim gives 03:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a five-field cron expression, or None."""
    if not isinstance(expression, str) or len(expression.split()) != 5:
        return ('must have five fields: minute hour day-of-month month day-of-week, '
                'e.g. "0 2 * * 1-5"')
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        return f"is not a cron expression: {exc}"
    return None


def timezone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f'"{name}" is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)'
    return None


def latest_tick(expression: str, zone: str, now: datetime) -> datetime:
    """The last tick at or before ``now`` (aware, in the schedule's zone)."""
    local = now.astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0)
    # cronsim's reverse iteration starts strictly before its base: a minute after
    # ``now``'s minute makes a tick falling at ``now``'s minute count.
    return next(CronSim(expression, local + timedelta(minutes=1), reverse=True))


def next_tick(expression: str, zone: str, now: datetime) -> datetime:
    """The first tick after ``now`` (aware, in the schedule's zone)."""
    return next(CronSim(expression, now.astimezone(ZoneInfo(zone))))
