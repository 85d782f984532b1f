"""Flow versions as pure functions over an immutable history: draft, publish, rollback.

A history holds at most one draft (editable, with a revision counter for optimistic
concurrency) and the numbered versions ever published (immutable). Exactly one version is
``PUBLISHED`` at a time; publishing retires the previous one. Rollback never rewrites history:
it publishes a new version whose document is a copy of an older one (``restored_from``).
The store persists these shapes; entry points (numbers, chat channels) bind to a flow id and
always run ``published_flow(history)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from enum import StrEnum

from cloudcc.ivr.exceptions import (
    FlowDocumentError,
    IllegalVersionTransitionError,
    NoDraftError,
    NoPublishedVersionError,
    UnknownVersionError,
    VersionConflictError,
)
from cloudcc.ivr.model import Flow
from cloudcc.ivr.validation import ensure_valid


class VersionState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


VERSION_TRANSITIONS: dict[VersionState, frozenset[VersionState]] = {
    VersionState.DRAFT: frozenset({VersionState.PUBLISHED}),
    VersionState.PUBLISHED: frozenset({VersionState.RETIRED}),
    VersionState.RETIRED: frozenset(),
}


def _check_transition(old: VersionState, new: VersionState) -> None:
    if new not in VERSION_TRANSITIONS[old]:
        raise IllegalVersionTransitionError(f"a {old} version cannot become {new}")


def content_hash(flow: Flow) -> str:
    """SHA-256 of the canonical JSON of a flow (same content → same hash)."""
    canonical = json.dumps(flow.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Draft:
    document: Flow
    revision: int  # bumps on every save; pass it back as expected_revision
    saved_at: float
    saved_by: str | None = None
    based_on: int | None = None  # the version number the draft was started from


@dataclass(frozen=True, slots=True)
class FlowVersion:
    number: int
    state: VersionState
    document: Flow
    content_hash: str
    created_at: float
    published_at: float | None = None
    retired_at: float | None = None
    published_by: str | None = None
    restored_from: int | None = None  # set when this version is a rollback


@dataclass(frozen=True, slots=True)
class FlowHistory:
    flow_id: str
    versions: tuple[FlowVersion, ...] = ()
    draft: Draft | None = None

    @property
    def published(self) -> FlowVersion | None:
        return next((v for v in self.versions if v.state is VersionState.PUBLISHED), None)

    def version(self, number: int) -> FlowVersion:
        for v in self.versions:
            if v.number == number:
                return v
        raise UnknownVersionError(f"flow {self.flow_id!r} has no version {number}")


def new_history(flow_id: str) -> FlowHistory:
    return FlowHistory(flow_id=flow_id)


def save_draft(
    history: FlowHistory,
    document: Flow,
    now: float,
    *,
    expected_revision: int | None = None,
    user: str | None = None,
) -> FlowHistory:
    """Create or replace the draft. Drafts may be invalid; publishing validates."""
    if document.id != history.flow_id:
        raise FlowDocumentError(f"document id {document.id!r} is not flow {history.flow_id!r}")
    current = history.draft
    if expected_revision is not None:
        actual = current.revision if current else 0
        if actual != expected_revision:
            raise VersionConflictError(
                f"draft of {history.flow_id!r} is at revision {actual}, not {expected_revision}"
            )
    revision = (current.revision if current else 0) + 1
    based_on = (
        current.based_on if current else (history.published.number if history.published else None)
    )
    return replace(history, draft=Draft(document, revision, now, user, based_on))


def edit_version(
    history: FlowHistory, number: int, now: float, user: str | None = None
) -> FlowHistory:
    """Start (or replace) the draft from the document of version ``number``."""
    source = history.version(number)
    revision = (history.draft.revision if history.draft else 0) + 1
    return replace(history, draft=Draft(source.document, revision, now, user, number))


def discard_draft(history: FlowHistory) -> FlowHistory:
    if history.draft is None:
        raise NoDraftError(f"flow {history.flow_id!r} has no draft")
    return replace(history, draft=None)


def _publish_document(
    history: FlowHistory,
    document: Flow,
    now: float,
    user: str | None,
    restored_from: int | None,
    known_flows: frozenset[str] | None,
    known_schedules: frozenset[str],
    known_caller_ids: frozenset[str] | None = None,
) -> FlowHistory:
    ensure_valid(
        document,
        known_flows=known_flows,
        known_schedules=known_schedules,
        known_caller_ids=known_caller_ids,
    )
    _check_transition(VersionState.DRAFT, VersionState.PUBLISHED)
    versions = []
    for v in history.versions:
        if v.state is VersionState.PUBLISHED:
            _check_transition(v.state, VersionState.RETIRED)
            v = replace(v, state=VersionState.RETIRED, retired_at=now)
        versions.append(v)
    number = max((v.number for v in history.versions), default=0) + 1
    versions.append(
        FlowVersion(
            number=number,
            state=VersionState.PUBLISHED,
            document=document,
            content_hash=content_hash(document),
            created_at=now,
            published_at=now,
            published_by=user,
            restored_from=restored_from,
        )
    )
    return replace(history, versions=tuple(versions))


def publish(
    history: FlowHistory,
    now: float,
    *,
    user: str | None = None,
    expected_revision: int | None = None,
    known_flows: frozenset[str] | None = None,
    known_schedules: frozenset[str] = frozenset(),
    known_caller_ids: frozenset[str] | None = None,
) -> FlowHistory:
    """Validate the draft and make it the new published version (FlowValidationError if not)."""
    draft = history.draft
    if draft is None:
        raise NoDraftError(f"flow {history.flow_id!r} has no draft to publish")
    if expected_revision is not None and draft.revision != expected_revision:
        raise VersionConflictError(
            f"draft of {history.flow_id!r} is at revision {draft.revision}, not {expected_revision}"
        )
    published = _publish_document(
        history, draft.document, now, user, None, known_flows, known_schedules, known_caller_ids
    )
    return replace(published, draft=None)


def rollback(
    history: FlowHistory,
    now: float,
    *,
    to_version: int | None = None,
    user: str | None = None,
    known_flows: frozenset[str] | None = None,
    known_schedules: frozenset[str] = frozenset(),
    known_caller_ids: frozenset[str] | None = None,
) -> FlowHistory:
    """Publish again the document of ``to_version`` (default: the one before the current)."""
    current = history.published
    if current is None:
        raise NoPublishedVersionError(f"flow {history.flow_id!r} was never published")
    if to_version is None:
        earlier = [v.number for v in history.versions if v.number < current.number]
        if not earlier:
            raise UnknownVersionError(
                f"flow {history.flow_id!r} has no version before {current.number}"
            )
        to_version = max(earlier)
    target = history.version(to_version)
    if target.number == current.number:
        raise IllegalVersionTransitionError(f"version {to_version} is already published")
    return _publish_document(
        history,
        target.document,
        now,
        user,
        target.number,
        known_flows,
        known_schedules,
        known_caller_ids,
    )


def published_flow(history: FlowHistory) -> Flow:
    """The document an entry point runs now."""
    current = history.published
    if current is None:
        raise NoPublishedVersionError(f"flow {history.flow_id!r} has no published version")
    return current.document
