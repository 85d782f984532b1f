"""The node's garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cloudcc.config import load_settings
from cloudcc.runtime import tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_freezes_the_settled_state_and_spaces_young_collections() -> None:
    settled = [[i] for i in range(1000)]
    tune_gc(12_345)
    assert gc.get_threshold()[0] == 12_345
    assert gc.get_freeze_count() >= len(settled)


@pytest.mark.usefixtures("restore_gc")
def test_zero_keeps_pythons_defaults() -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc(0)
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_the_threshold_is_a_setting() -> None:
    assert load_settings(environ={"CLOUDCC_GC_YOUNG_THRESHOLD": "0"}).gc_young_threshold == 0
