"""The media clock: absolute deadlines, catch-up after a late wake-up, lateness stats."""

from __future__ import annotations

from cloudcc.media.clock import TickClock


def test_deadlines_stay_on_the_grid_whatever_the_wake_up_times() -> None:
    clock = TickClock(start=100.0)
    now = 100.0
    for _ in range(180_000):  # an hour of ticks, each woken 1.3 ms late
        for _ in range(clock.due(now + 0.0013)):
            clock.advance()
        now = clock.next_deadline
    assert clock.ticks == 180_000
    assert clock.next_deadline == 100.0 + 180_000 * 0.020  # no drift after an hour
    assert clock.late_ticks == 0


def test_a_late_wake_up_runs_the_missed_ticks() -> None:
    clock = TickClock(start=0.0)
    assert clock.due(0.0) == 1
    clock.advance()
    assert clock.due(0.0695) == 3  # 20, 40 and 60 ms are due
    for _ in range(3):
        clock.advance()
    assert clock.next_deadline == 0.08
    assert clock.late_ticks == 1
    assert 49 < clock.stats().max_lateness_ms < 50


def test_a_long_stall_skips_frames_but_keeps_the_grid() -> None:
    clock = TickClock(start=0.0, max_catch_up=5)
    count = clock.due(1.0)
    assert count == 5
    for _ in range(count):
        clock.advance()
    assert clock.skipped_ticks == 46
    assert clock.next_deadline == 1.02


def test_nothing_is_due_before_the_deadline() -> None:
    clock = TickClock(start=10.0)
    assert clock.due(9.999) == 0
