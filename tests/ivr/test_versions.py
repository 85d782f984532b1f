from __future__ import annotations

import pytest

from cloudcc.ivr.exceptions import (
    FlowDocumentError,
    FlowValidationError,
    IllegalVersionTransitionError,
    NoDraftError,
    NoPublishedVersionError,
    VersionConflictError,
)
from cloudcc.ivr.versions import (
    VersionState,
    content_hash,
    discard_draft,
    edit_version,
    new_history,
    publish,
    published_flow,
    rollback,
    save_draft,
)

from .helpers import flow, hangup

V1 = flow([hangup("end", reason="v1")])
V2 = flow([hangup("end", reason="v2")])
BROKEN = flow([hangup("end"), hangup("orphan")])


def test_draft_is_not_live_until_published() -> None:
    h = save_draft(new_history("f"), V1, 100.0)
    with pytest.raises(NoPublishedVersionError):
        published_flow(h)
    h = publish(h, 101.0, user="admin")
    assert published_flow(h) == V1
    assert h.draft is None
    v = h.version(1)
    assert (v.state, v.published_at, v.published_by) == (VersionState.PUBLISHED, 101.0, "admin")


def test_publishing_retires_the_previous_version() -> None:
    h = publish(save_draft(new_history("f"), V1, 1.0), 2.0)
    h = publish(save_draft(h, V2, 3.0), 4.0)
    assert [(v.number, v.state) for v in h.versions] == [
        (1, VersionState.RETIRED),
        (2, VersionState.PUBLISHED),
    ]
    assert h.version(1).retired_at == 4.0
    assert published_flow(h) == V2


def test_invalid_draft_cannot_be_published_but_can_be_saved() -> None:
    h = save_draft(new_history("f"), BROKEN, 1.0)
    with pytest.raises(FlowValidationError) as info:
        publish(h, 2.0)
    assert info.value.problems[0].node_id == "orphan"
    assert h.draft is not None and h.versions == ()


def test_rollback_publishes_a_copy_of_the_older_version() -> None:
    h = publish(save_draft(new_history("f"), V1, 1.0), 2.0)
    h = publish(save_draft(h, V2, 3.0), 4.0)
    h = rollback(h, 5.0, user="ops")
    assert published_flow(h) == V1
    latest = h.versions[-1]
    assert (latest.number, latest.restored_from, latest.state) == (3, 1, VersionState.PUBLISHED)
    assert latest.content_hash == content_hash(V1) == h.version(1).content_hash
    assert [v.state for v in h.versions[:2]] == [VersionState.RETIRED, VersionState.RETIRED]
    h = rollback(h, 6.0, to_version=2)
    assert published_flow(h) == V2


def test_rollback_needs_an_earlier_version() -> None:
    h = publish(save_draft(new_history("f"), V1, 1.0), 2.0)
    with pytest.raises(IllegalVersionTransitionError):
        rollback(h, 3.0, to_version=1)
    with pytest.raises(NoPublishedVersionError):
        rollback(new_history("f"), 3.0)


def test_concurrent_draft_edit_is_refused() -> None:
    h = save_draft(new_history("f"), V1, 1.0, expected_revision=0)
    assert h.draft is not None and h.draft.revision == 1
    h = save_draft(h, V2, 2.0, expected_revision=1)
    with pytest.raises(VersionConflictError):
        save_draft(h, V1, 3.0, expected_revision=1)
    with pytest.raises(VersionConflictError):
        publish(h, 4.0, expected_revision=1)


def test_edit_version_starts_a_draft_from_it_and_discard_drops_it() -> None:
    h = publish(save_draft(new_history("f"), V1, 1.0), 2.0)
    h = edit_version(h, 1, 3.0)
    assert h.draft is not None and h.draft.based_on == 1 and h.draft.document == V1
    h = discard_draft(h)
    with pytest.raises(NoDraftError):
        discard_draft(h)
    with pytest.raises(NoDraftError):
        publish(h, 4.0)


def test_draft_for_another_flow_id_is_refused() -> None:
    with pytest.raises(FlowDocumentError):
        save_draft(new_history("other"), V1, 1.0)
