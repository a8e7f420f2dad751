"""AWS's cron expressions for the DeploymentWindow rule, as a window of minutes.

The expression has 6 fields and an optional Year (Quartz's form, as AWS
writes it): ``Seconds Minutes Hours Day-of-month Month Day-of-week [Year]``,
e.g. ``0 0 9-17 ? * MON-FRI *``. Fields take ``*``, numbers, names
(``JAN``–``DEC``, ``SUN``–``SAT``, Sunday = 1), lists ``a,b``, ranges ``a-b``
and steps ``a/n``, ``*/n``, ``a-b/n``; a range wraps around (``22-6``
overnight, ``FRI-MON``), except in Year. Day-of-month and Day-of-week: exactly
one of them is ``?`` ("no value"); Day-of-month also takes ``L`` (last day),
``L-n`` (n days before it), ``nW`` (the weekday nearest day n, in the same
month) and ``LW`` (the last weekday); Day-of-week takes ``nL`` (the last such
weekday of the month) and ``n#k`` (the k-th such weekday).

What "inside the window" means (AWS leaves it unsaid; docs/conditions.md says why):
a moment is inside when its Hours, Day-of-month, Month, Day-of-week and Year
match, and its Minutes match too — unless the Minutes field is one number, as
in AWS's own example above, which then marks the top of each matching hour and
the window is the whole hour. The Seconds field is not used (it must be ``*``
or a number). ``parse`` raises ``CronError`` with a sentence naming the field.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
FIELDS = ("Seconds", "Minutes", "Hours", "Day-of-month", "Month", "Day-of-week", "Year")
BOUNDS = {"Seconds": (0, 59), "Minutes": (0, 59), "Hours": (0, 23), "Day-of-month": (1, 31),
          "Month": (1, 12), "Day-of-week": (1, 7), "Year": (1970, 2199)}
# Abbreviations naming a fixed offset (AWS accepts 3-5-letter abbreviations; the
# ones zoneinfo knows, such as EST, CET or GMT, are looked up there).
ABBREVIATIONS = {"PST": -8, "PDT": -7, "MDT": -6, "CST": -6, "CDT": -5, "EDT": -4,
                 "AKST": -9, "AKDT": -8, "BST": 1, "CEST": 2, "EEST": 3, "IST": 5.5,
                 "JST": 9, "KST": 9, "AEST": 10, "AEDT": 11}
UTC_OFFSET_RE = re.compile(r"^UTC(?:([+-])(\d{1,2}):(\d{2}))?$")


class CronError(ValueError):
    """The expression or the time zone is not valid; the message names the field."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int] | None  # None: any minute of a matching hour
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int] | None
    dom: str | None  # raw Day-of-month field, None when "?"
    dow: str | None  # raw Day-of-week field, None when "?"

    def matches(self, moment: datetime) -> bool:
        """Whether ``moment`` (a local wall-clock time) is inside the window."""
        if self.minutes is not None and moment.minute not in self.minutes:
            return False
        if moment.hour not in self.hours or moment.month not in self.months:
            return False
        if self.years is not None and moment.year not in self.years:
            return False
        if self.dom is not None:
            return _day_of_month_matches(self.dom, moment)
        return _day_of_week_matches(self.dow or "*", moment)

    def next_opening(self, moment: datetime, limit_days: int = 366 * 2) -> datetime | None:
        """The first minute at or after ``moment`` inside the window (None within the limit)."""
        t = moment.replace(second=0, microsecond=0)
        end = t + timedelta(days=limit_days)
        while t < end:
            if t.month not in self.months or (self.years is not None
                                               and t.year not in self.years):
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            day_ok = (_day_of_month_matches(self.dom, t) if self.dom is not None
                      else _day_of_week_matches(self.dow or "*", t))
            if not day_ok:
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if self.minutes is None or t.minute in self.minutes:
                return t
            t += timedelta(minutes=1)
        return None


def _number(text: str, name: str, names: dict[str, int] | None = None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f'{name}: "{text}" is not a number'
                        + (" or a name" if names else ""))
    value = int(text)
    low, high = BOUNDS[name]
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def _values(field: str, name: str, names: dict[str, int] | None = None) -> frozenset[int]:
    """A plain field (lists, ranges, steps) as the set of values it matches."""
    low, high = BOUNDS[name]
    out: set[int] = set()
    for part in field.split(","):
        if not part:
            raise CronError(f'{name}: "{field}" has an empty list item')
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f'{name}: "{part}" has no valid step after /')
            step = int(step_text)
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, stop = _number(a, name, names), _number(b, name, names)
            if start > stop:
                if name == "Year":
                    raise CronError(f'{name}: "{base}" is a range that ends before it starts')
                # Wraps around, as Quartz reads 22-6 (overnight) or FRI-MON.
                out.update(v for v in range(start, high + 1 + stop - low + 1)
                           if (v - start) % step == 0)
                out = {v if v <= high else v - (high - low + 1) for v in out}
                continue
        else:
            start = _number(base, name, names)
            stop = high if slash else start
        out.update(range(start, stop + 1, step))
    return frozenset(out)


def _last_day(moment: datetime) -> int:
    return calendar.monthrange(moment.year, moment.month)[1]


def _quartz_weekday(moment: datetime) -> int:
    return (moment.isoweekday() % 7) + 1  # Sunday = 1 ... Saturday = 7


def _nearest_weekday(year: int, month: int, day: int) -> int:
    last = calendar.monthrange(year, month)[1]
    day = min(day, last)
    weekday = calendar.weekday(year, month, day)  # Monday = 0
    if weekday == 5:  # Saturday: Friday before, or Monday after when the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, or Friday before at the month's end
        return day + 1 if day < last else day - 2
    return day


def _day_of_month_matches(field: str, moment: datetime) -> bool:
    for part in field.split(","):
        if part == "L":
            if moment.day == _last_day(moment):
                return True
        elif part.startswith("L-"):
            if moment.day == _last_day(moment) - int(part[2:]):
                return True
        elif part == "LW":
            last = _last_day(moment)
            if moment.day == _nearest_weekday(moment.year, moment.month, last):
                return True
        elif part.endswith("W"):
            if moment.day == _nearest_weekday(moment.year, moment.month, int(part[:-1])):
                return True
        elif moment.day in _values(part, "Day-of-month"):
            return True
    return False


def _day_of_week_matches(field: str, moment: datetime) -> bool:
    weekday = _quartz_weekday(moment)
    for part in field.split(","):
        if "#" in part:
            day, _, nth = part.partition("#")
            if weekday == _number(day, "Day-of-week", DAYS) and \
                    (moment.day - 1) // 7 + 1 == int(nth):
                return True
        elif part.endswith("L") and part != "L":
            if weekday == _number(part[:-1], "Day-of-week", DAYS) and \
                    moment.day + 7 > _last_day(moment):
                return True
        elif part == "L":
            if weekday == 7:
                return True
        elif weekday in _values(part, "Day-of-week", DAYS):
            return True
    return False


def _check_day_of_month(field: str) -> None:
    for part in field.split(","):
        if part in ("L", "LW"):
            continue
        if part.startswith("L-"):
            if not part[2:].isdigit() or not 0 <= int(part[2:]) <= 30:
                raise CronError(f'Day-of-month: "{part}" needs a number of days 0-30 after L-')
            continue
        if part.endswith("W"):
            _number(part[:-1], "Day-of-month")
            continue
        _values(part, "Day-of-month")


def _check_day_of_week(field: str) -> None:
    for part in field.split(","):
        if "#" in part:
            day, _, nth = part.partition("#")
            _number(day, "Day-of-week", DAYS)
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise CronError(f'Day-of-week: "{part}" needs 1-5 after #')
            continue
        if part == "L":
            continue
        if part.endswith("L"):
            _number(part[:-1], "Day-of-week", DAYS)
            continue
        _values(part, "Day-of-week", DAYS)


def parse(expression: str) -> Cron:
    """The window an AWS cron expression describes (raises ``CronError``)."""
    parts = expression.split()
    if len(parts) not in (6, 7):
        raise CronError(f"has {len(parts)} fields: use 6 or 7 (Seconds Minutes Hours "
                        "Day-of-month Month Day-of-week [Year]), e.g. 0 0 9-17 ? * MON-FRI *")
    seconds, minutes, hours, dom, month, dow = parts[:6]
    year = parts[6] if len(parts) == 7 else "*"
    if seconds != "*":
        _values(seconds, "Seconds")
    if (dom == "?") == (dow == "?"):
        raise CronError('one of Day-of-month and Day-of-week must be "?" and the other not')
    if dom != "?":
        _check_day_of_month(dom)
    if dow != "?":
        _check_day_of_week(dow)
    minute_set = None if minutes.isdigit() else _values(minutes, "Minutes")
    if minutes.isdigit():
        _number(minutes, "Minutes")
    return Cron(
        minutes=minute_set,
        hours=_values(hours, "Hours"),
        months=_values(month, "Month", MONTHS),
        years=None if year == "*" else _values(year, "Year"),
        dom=None if dom == "?" else dom.upper(),
        dow=None if dow == "?" else dow.upper(),
    )


def zone(name: str | None):
    """A tzinfo for AWS's TimeZone values: Region/City, UTC[±HH:MM], or an abbreviation."""
    if not name:
        return UTC
    m = UTC_OFFSET_RE.match(name)
    if m:
        if not m.group(1):
            return UTC
        hours, minutes = int(m.group(2)), int(m.group(3))
        if hours > 14 or minutes > 59:
            raise CronError(f'TimeZone: "{name}" is not an offset from UTC-14:00 to UTC+14:00')
        sign = 1 if m.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    if name.upper() in ABBREVIATIONS:
        return timezone(timedelta(hours=ABBREVIATIONS[name.upper()]), name.upper())
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f'TimeZone: "{name}" is not a time zone: use Region/City '
                        "(Europe/Paris), UTC, UTC+05:30 or an abbreviation such as PST") from None
