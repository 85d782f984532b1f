from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cloudcc.ivr.exceptions import ScheduleError
from cloudcc.ivr.hours import HoursStatus, check_schedule, evaluate_hours
from cloudcc.ivr.model import Schedule

WEEKDAYS_9_TO_6 = Schedule.model_validate(
    {
        "weekly": {d: ["09:00-18:00"] for d in ["mon", "tue", "wed", "thu", "fri"]},
        "holidays": [{"date": "2026-10-01", "name": "National Day"}, {"date": "12-25"}],
        "exceptions": [{"date": "2026-12-24", "name": "Christmas Eve", "open": ["09:00-12:00"]}],
    }
)


def at(tz: str, *parts: int) -> float:
    return datetime(*parts, tzinfo=ZoneInfo(tz)).timestamp()  # type: ignore[misc]


def test_open_and_closed_follow_the_tenant_time_zone() -> None:
    # 02:00 UTC on Monday is 10:00 in Shanghai (open) and 21:00 Sunday in New York (closed)
    instant = at("UTC", 2026, 11, 30, 2, 0)
    assert evaluate_hours(WEEKDAYS_9_TO_6, instant, "Asia/Shanghai").status is HoursStatus.OPEN
    assert evaluate_hours(WEEKDAYS_9_TO_6, instant, "America/New_York").status is HoursStatus.CLOSED


def test_schedule_time_zone_wins_over_tenant_zone() -> None:
    schedule = WEEKDAYS_9_TO_6.model_copy(update={"timezone": "Asia/Shanghai"})
    instant = at("UTC", 2026, 11, 30, 2, 0)
    decision = evaluate_hours(schedule, instant, "America/New_York")
    assert decision.status is HoursStatus.OPEN
    assert decision.local_time.hour == 10


def test_range_boundaries_start_inclusive_end_exclusive() -> None:
    tz = "Europe/Berlin"
    assert (
        evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 12, 1, 8, 59), tz).status is HoursStatus.CLOSED
    )
    assert evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 12, 1, 9, 0), tz).status is HoursStatus.OPEN
    assert (
        evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 12, 1, 17, 59), tz).status is HoursStatus.OPEN
    )
    assert (
        evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 12, 1, 18, 0), tz).status is HoursStatus.CLOSED
    )


def test_weekend_is_closed() -> None:
    tz = "Asia/Shanghai"
    assert (
        evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 11, 28, 11, 0), tz).status
        is HoursStatus.CLOSED
    )


def test_dated_and_yearly_holidays_close_the_whole_day() -> None:
    tz = "Asia/Shanghai"
    national_day = evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 10, 1, 11, 0), tz)
    assert national_day.status is HoursStatus.HOLIDAY and "National Day" in national_day.reason
    # 10-01 is dated 2026 only: in 2027 it is an ordinary Friday
    assert (
        evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2027, 10, 1, 11, 0), tz).status is HoursStatus.OPEN
    )
    # 12-25 recurs every year
    for year in (2026, 2030):
        when = at(tz, year, 12, 25, 11, 0)
        assert evaluate_hours(WEEKDAYS_9_TO_6, when, tz).status is HoursStatus.HOLIDAY


def test_special_hours_replace_the_weekly_hours() -> None:
    tz = "Europe/London"
    assert (
        evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 12, 24, 11, 0), tz).status is HoursStatus.OPEN
    )
    late = evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 12, 24, 13, 0), tz)
    assert late.status is HoursStatus.CLOSED and "Christmas Eve" in late.reason


def test_overnight_range_runs_into_the_next_day() -> None:
    night = Schedule.model_validate({"weekly": {"fri": ["22:00-06:00"]}})
    tz = "America/Los_Angeles"
    assert evaluate_hours(night, at(tz, 2026, 12, 4, 23, 0), tz).status is HoursStatus.OPEN
    assert evaluate_hours(night, at(tz, 2026, 12, 5, 5, 59), tz).status is HoursStatus.OPEN
    assert evaluate_hours(night, at(tz, 2026, 12, 5, 6, 0), tz).status is HoursStatus.CLOSED
    assert evaluate_hours(night, at(tz, 2026, 12, 4, 21, 0), tz).status is HoursStatus.CLOSED


def test_local_hours_hold_across_a_daylight_saving_change() -> None:
    tz = "Europe/Paris"  # clocks go back on 2026-10-25; the 25th is a Sunday, the 26th a Monday
    before = evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 10, 23, 9, 30), tz)
    after = evaluate_hours(WEEKDAYS_9_TO_6, at(tz, 2026, 10, 26, 9, 30), tz)
    assert before.status is after.status is HoursStatus.OPEN
    # after the change Paris is UTC+1: 07:30 UTC is 08:30 local, before opening
    assert (
        evaluate_hours(WEEKDAYS_9_TO_6, at("UTC", 2026, 10, 26, 7, 30), tz).status
        is HoursStatus.CLOSED
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"timezone": "Nowhere/City"},
        {"weekly": {"mon": ["9:00-17:00"]}},
        {"weekly": {"mon": ["25:00-26:00"]}},
        {"weekly": {"mon": ["10:00-10:00"]}},
        {"holidays": [{"date": "2026-02-30"}]},
    ],
)
def test_malformed_schedule_raises_schedule_error(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ScheduleError):
        check_schedule(Schedule.model_validate(bad))
