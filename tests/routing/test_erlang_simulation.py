"""Erlang C formulas, and the engine under Poisson load reproducing them."""

from __future__ import annotations

import math

import pytest

from cloudcc.routing import AgentConfig, QueueConfig
from cloudcc.routing.erlang import (
    agents_for_service_level,
    average_speed_of_answer,
    erlang_b,
    erlang_c,
    service_level,
)
from cloudcc.routing.exceptions import InvalidConfig
from cloudcc.routing.simulation import Arrivals, Simulation


def test_erlang_b_matches_the_textbook_table() -> None:
    # 10 erlangs offered to 10 trunks blocks 21.46 % (standard Erlang B table).
    assert erlang_b(10, 10.0) == pytest.approx(0.2146, abs=1e-4)
    assert erlang_b(1, 1.0) == pytest.approx(0.5)


def test_erlang_c_matches_the_closed_form() -> None:
    n, a = 5, 3.0
    top = a**n / math.factorial(n) * n / (n - a)
    bottom = sum(a**k / math.factorial(k) for k in range(n)) + top
    assert erlang_c(n, a) == pytest.approx(top / bottom)
    assert erlang_c(3, 3.0) == 1.0


def test_service_level_and_staffing_agree() -> None:
    # 100 calls per half hour, 180 s handle time, 80 % within 20 s.
    rate, handle = 100 / 1800, 180.0
    n = agents_for_service_level(rate, handle, 20, 0.8)
    assert service_level(n, rate, handle, 20) >= 0.8 > service_level(n - 1, rate, handle, 20)
    assert average_speed_of_answer(n, rate, handle) < average_speed_of_answer(n - 1, rate, handle)
    assert average_speed_of_answer(10, 1.0, 10.0) == math.inf


def test_erlang_rejects_nonsense() -> None:
    with pytest.raises(InvalidConfig):
        erlang_c(-1, 2.0)
    with pytest.raises(InvalidConfig):
        agents_for_service_level(1.0, 10.0, 20, 1.5)


def test_engine_under_poisson_load_reproduces_the_erlang_c_service_level() -> None:
    agents, handle = 10, 60.0
    rate = 8.0 / handle  # 8 erlangs on 10 agents
    sim = Simulation(
        queues=[QueueConfig("q", service_level_seconds=20)],
        agents=[AgentConfig(f"a{i}") for i in range(agents)],
        arrivals=[Arrivals("q", rate, handle)],
        duration=30_000 / rate,
        warmup=600,
        seed=7,
    )
    result = sim.run()["q"]
    assert result.arrived > 29_000
    assert result.service_level == pytest.approx(service_level(agents, rate, handle, 20), abs=0.03)
    asa = average_speed_of_answer(agents, rate, handle)
    assert result.average_speed_of_answer == pytest.approx(asa, rel=0.15)


def test_simulation_with_impatient_callers_reports_abandons() -> None:
    sim = Simulation(
        queues=[QueueConfig("q")],
        agents=[AgentConfig("a0"), AgentConfig("a1")],
        arrivals=[Arrivals("q", 1 / 20, 60.0, patience_seconds=30)],
        duration=20_000,
        seed=3,
    )
    result = sim.run()["q"]
    assert result.abandoned > 0
    assert result.answered + result.abandoned == pytest.approx(result.arrived, abs=2)
    assert 0 < result.abandon_rate < 1
