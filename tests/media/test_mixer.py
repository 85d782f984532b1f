"""Mixing rules: mix-minus and the supervision modes, as a gain matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudcc.media.exceptions import FrameSizeError, NotAParticipant
from cloudcc.media.mixer import Mix, ParticipantMode


def frames(*values: int) -> np.ndarray:
    return np.array([[v] * 160 for v in values], dtype=np.int16)


def test_each_participant_hears_everyone_but_itself() -> None:
    mix = Mix()
    for k in "abc":
        mix.add(k)
    heard, public = mix.mix(frames(100, 20, 3))
    assert heard[:, 0].tolist() == [23, 103, 120]
    assert public[0] == 123


def test_listener_hears_all_and_is_heard_by_none() -> None:
    mix = Mix()
    mix.add("customer")
    mix.add("agent")
    mix.add("supervisor", ParticipantMode.LISTEN)
    heard, _ = mix.mix(frames(100, 20, 3))
    assert heard[:, 0].tolist() == [20, 100, 120]


def test_whisper_is_heard_by_the_agent_only() -> None:
    mix = Mix()
    mix.add("customer")
    mix.add("agent")
    mix.add("supervisor", ParticipantMode.WHISPER, whisper_to="agent")
    heard, public = mix.mix(frames(100, 20, 3))
    assert heard[:, 0].tolist() == [20, 103, 120]
    assert public[0] == 120  # the recording of the conversation leaves coaching out


def test_barge_is_heard_by_everyone() -> None:
    mix = Mix()
    mix.add("customer")
    mix.add("agent")
    mix.add("supervisor", ParticipantMode.LISTEN)
    mix.update("supervisor", mode=ParticipantMode.BARGE)
    heard, _ = mix.mix(frames(100, 20, 3))
    assert heard[:, 0].tolist() == [23, 103, 120]


def test_muted_and_held_participants_are_heard_by_none_and_held_hears_nothing() -> None:
    mix = Mix()
    for k in "abc":
        mix.add(k)
    mix.update("a", muted=True)
    mix.update("b", held=True)
    heard, _ = mix.mix(frames(100, 20, 3))
    assert heard[:, 0].tolist() == [3, 0, 0]


def test_sums_clip_instead_of_wrapping() -> None:
    mix = Mix()
    for k in "abc":
        mix.add(k)
    heard, _ = mix.mix(frames(30000, 30000, 30000))
    assert heard[0, 0] == 32767


def test_wrong_frame_count_is_rejected() -> None:
    mix = Mix()
    mix.add("a")
    with pytest.raises(FrameSizeError):
        mix.mix(frames(1, 2))


def test_removing_a_stranger_raises() -> None:
    with pytest.raises(NotAParticipant):
        Mix().remove("nobody")


modes = st.sampled_from(list(ParticipantMode))


@given(st.lists(st.tuples(modes, st.booleans(), st.booleans()), min_size=1, max_size=6))
def test_mixing_invariants_hold_for_any_modes(
    spec: list[tuple[ParticipantMode, bool, bool]],
) -> None:
    mix = Mix()
    keys = [f"p{i}" for i in range(len(spec))]
    for i, (mode, muted, held) in enumerate(spec):
        mix.add(keys[i], mode, whisper_to=keys[0] if mode is ParticipantMode.WHISPER else None)
        mix.update(keys[i], muted=muted, held=held)
    w = mix.matrix()
    assert np.all(np.diag(w) == 0)  # nobody hears itself
    for j, (mode, muted, held) in enumerate(spec):
        hearers = {keys[i] for i in range(len(keys)) if w[i, j]}
        if mode is ParticipantMode.LISTEN or muted or held:
            assert hearers == set()
        if mode is ParticipantMode.WHISPER:
            assert hearers <= {keys[0]}
    for i, (_, _, held) in enumerate(spec):
        if held:
            assert not w[i].any()  # a held participant hears the music, not the room
