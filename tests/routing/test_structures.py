"""The engine's ordered structures against plain models: the timer queue fires in the order
one heap of all timers would, and queue positions equal ranks in a sorted list."""

from __future__ import annotations

import heapq
from bisect import insort

from hypothesis import given
from hypothesis import strategies as st

from cloudcc.routing import positions
from cloudcc.routing.positions import RankedKeys
from cloudcc.routing.timers import TimerQueue

# (advance the clock by, delay, or None to pop the due timers)
timer_steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 1.0, 7.0]),
        st.none() | st.sampled_from([0.0, 1.0, 5.0, 20.0, 600.0]),
        st.booleans(),  # arm it in the past (a re-armed relaxation step): out of order
    ),
    max_size=200,
)


@given(timer_steps)
def test_timers_fire_in_due_then_arming_order(
    steps: list[tuple[float, float | None, bool]],
) -> None:
    timers = TimerQueue()
    model: list[tuple[float, int]] = []
    now, seq = 0.0, 0
    fired: list[tuple[float, int]] = []
    expected: list[tuple[float, int]] = []
    for advance, delay, past in steps:
        now += advance
        if delay is None:
            while timers.heap and timers.heap[0][0] <= now:
                at, s, _, _, _ = timers.pop()
                fired.append((at, s))
            while model and model[0][0] <= now:
                expected.append(heapq.heappop(model))
            continue
        seq += 1
        at = now + delay - (3.0 if past else 0.0)
        timers.add(at, seq, 0, None, delay)
        heapq.heappush(model, (at, seq))
        first = timers.first()
        assert first is not None and first[:2] == model[0]
    while timers.heap:
        at, s, _, _, _ = timers.pop()
        fired.append((at, s))
    expected.extend(sorted(model))
    assert fired == expected


ranked_steps = st.lists(
    st.tuples(st.booleans(), st.integers(0, 40), st.integers(0, 10_000)), max_size=300
)


@given(ranked_steps, st.sampled_from([2, 512]))
def test_positions_are_ranks_in_a_sorted_list(
    steps: list[tuple[bool, int, int]], load: int
) -> None:
    saved, positions._LOAD = positions._LOAD, load  # small blocks: splits happen
    try:
        check_ranks(steps)
    finally:
        positions._LOAD = saved


def check_ranks(steps: list[tuple[bool, int, int]]) -> None:
    ranked = RankedKeys()
    model: list[tuple[float, int]] = []
    order = 0
    for remove, place, pick in steps:
        if remove and model:
            key = model[0] if pick % 2 else model[pick % len(model)]  # the head, or any
            ranked.remove(key)
            model.remove(key)
        else:
            order += 1
            key = (float(place if pick % 3 else 100 + order), order)  # mostly later ones
            assert ranked.add(key) == sum(k < key for k in model)
            insort(model, key)
        assert len(ranked) == len(model)
        for key in model[:: max(1, len(model) // 7)]:
            assert ranked.rank(key) == model.index(key)
