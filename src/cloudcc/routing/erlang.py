"""Erlang B and Erlang C formulas for staffing (M/M/N queue, infinite patience).

A = arrival rate x mean handle time (offered load, erlangs); N agents. Erlang B by its
recurrence B(0)=1, B(n) = A B(n-1) / (n + A B(n-1)); Erlang C from B:
C = N B / (N - A (1 - B)). Service level within t: 1 - C exp(-(N - A) t / AHT).
"""

from __future__ import annotations

import math

from cloudcc.routing.exceptions import InvalidConfig


def _check(agents: int, load: float) -> None:
    if agents < 0 or load < 0:
        raise InvalidConfig("erlang", f"agents={agents} and load={load} must be >= 0")


def erlang_b(agents: int, load: float) -> float:
    """Probability that a contact finds all ``agents`` busy in a loss system."""
    _check(agents, load)
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that a contact has to wait (1.0 when the queue is unstable)."""
    _check(agents, load)
    if agents == 0 or load >= agents:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1.0 - b))


def service_level(agents: int, rate: float, handle: float, threshold: float) -> float:
    """Share of contacts answered within ``threshold`` seconds (rate per second)."""
    load = rate * handle
    if agents <= load:
        return 0.0
    c = erlang_c(agents, load)
    return 1.0 - c * math.exp(-(agents - load) * threshold / handle)


def average_speed_of_answer(agents: int, rate: float, handle: float) -> float:
    """Mean wait over all contacts (seconds); infinity when the queue is unstable."""
    load = rate * handle
    if agents <= load:
        return math.inf
    return erlang_c(agents, load) * handle / (agents - load)


def agents_for_service_level(
    rate: float, handle: float, threshold: float, target: float, limit: int = 100_000
) -> int:
    """The fewest agents giving at least ``target`` (0..1) answered within ``threshold``."""
    if not 0.0 < target < 1.0:
        raise InvalidConfig("erlang", "target service level must be in (0, 1)")
    n = max(1, math.floor(rate * handle) + 1)
    while n <= limit:
        if service_level(n, rate, handle, threshold) >= target:
            return n
        n += 1
    raise InvalidConfig("erlang", f"no staffing up to {limit} agents meets the target")
