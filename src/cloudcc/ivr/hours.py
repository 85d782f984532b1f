"""Business hours: is a schedule open at an instant, in the schedule's (or tenant's) IANA time zone.

Weekly ranges are local wall-clock ``"HH:MM-HH:MM"``; an end before the start runs past midnight
into the next day; ``"24:00"`` ends at midnight. A holiday closes its whole local date (including
the early-morning part of the previous evening's range). Special hours replace the weekly ranges
for their date. Dates are ``YYYY-MM-DD`` or ``MM-DD`` (every year).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloudcc.ivr.exceptions import ScheduleError
from cloudcc.ivr.model import Schedule

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class HoursStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"


@dataclass(frozen=True, slots=True)
class HoursDecision:
    status: HoursStatus
    local_time: datetime
    reason: str  # e.g. "weekly hours", "holiday: National Day", "special hours: Christmas Eve"


@dataclass(frozen=True, slots=True)
class _Range:
    start: int  # minutes since local midnight
    end: int  # minutes; may exceed 1440 for ranges past midnight


def parse_range(text: str) -> tuple[int, int]:
    """``"09:00-18:00"`` → (540, 1080); an end before the start means past midnight."""
    m = _RANGE.match(text)
    if not m:
        raise ScheduleError(f"time range {text!r} is not 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ScheduleError(f"time range {text!r} has an impossible time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == start:
        raise ScheduleError(f"time range {text!r} is empty")
    if end < start:
        end += 24 * 60
    return start, end


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ScheduleError for unknown names."""
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _parse_day(text: str) -> tuple[int | None, int, int]:
    parts = [int(p) for p in text.split("-")]
    year: int | None = parts[0] if len(parts) == 3 else None
    month, day = parts[-2], parts[-1]
    try:
        date(year or 2000, month, day)  # 2000 is a leap year, so 02-29 is accepted yearly
    except ValueError:
        raise ScheduleError(f"date {text!r} does not exist") from None
    return year, month, day


def _matches(text: str, day: date) -> bool:
    year, month, dom = _parse_day(text)
    return (year is None or year == day.year) and month == day.month and dom == day.day


def check_schedule(schedule: Schedule) -> None:
    """Raise ScheduleError if any range, date or the time zone is malformed."""
    if schedule.timezone is not None:
        zone(schedule.timezone)
    for ranges in schedule.weekly.values():
        for text in ranges:
            parse_range(text)
    for holiday in schedule.holidays:
        _parse_day(holiday.date)
    for special in schedule.exceptions:
        _parse_day(special.date)
        for text in special.open:
            parse_range(text)


def _day_ranges(schedule: Schedule, day: date) -> tuple[list[_Range], str] | None:
    """Ranges that start on ``day``, or None if ``day`` is a holiday."""
    for holiday in schedule.holidays:
        if _matches(holiday.date, day):
            return None
    for special in schedule.exceptions:
        if _matches(special.date, day):
            label = f"special hours: {special.name}" if special.name else "special hours"
            return [_Range(*parse_range(t)) for t in special.open], label
    weekly = schedule.weekly.get(WEEKDAYS[day.weekday()], [])  # type: ignore[call-overload]
    return [_Range(*parse_range(t)) for t in weekly], "weekly hours"


def _holiday_name(schedule: Schedule, day: date) -> str:
    for holiday in schedule.holidays:
        if _matches(holiday.date, day):
            return holiday.name
    return ""


def evaluate_hours(schedule: Schedule, now: float, default_timezone: str = "UTC") -> HoursDecision:
    """Decide open/closed/holiday at UNIX time ``now``."""
    tz = zone(schedule.timezone or default_timezone)
    local = datetime.fromtimestamp(now, UTC).astimezone(tz)
    today = local.date()
    minute = local.hour * 60 + local.minute
    todays = _day_ranges(schedule, today)
    if todays is None:
        name = _holiday_name(schedule, today)
        return HoursDecision(HoursStatus.HOLIDAY, local, f"holiday: {name}" if name else "holiday")
    ranges, label = todays
    if any(r.start <= minute < r.end for r in ranges):
        return HoursDecision(HoursStatus.OPEN, local, label)
    yesterday = _day_ranges(schedule, today - timedelta(days=1))
    if yesterday is not None:
        y_ranges, y_label = yesterday
        if any(r.start <= minute + 1440 < r.end for r in y_ranges):
            return HoursDecision(HoursStatus.OPEN, local, f"{y_label} (from the day before)")
    return HoursDecision(HoursStatus.CLOSED, local, label)


def local_time_of(now: float, timezone: str) -> time:
    """Wall-clock time at ``now`` in ``timezone`` (handy for prompts and tests)."""
    return datetime.fromtimestamp(now, UTC).astimezone(zone(timezone)).time()
