"""Errors raised by the IVR package: flow documents, expressions, versions, sessions, webhooks."""

from __future__ import annotations

from dataclasses import dataclass


class IvrError(Exception):
    """Base class of every error raised by ``cloudcc.ivr``."""


class FlowDocumentError(IvrError):
    """A flow document does not match the schema (wrong type, missing field, bad JSON)."""

    def __init__(self, message: str, *, node_id: str | None = None, location: str = "") -> None:
        self.node_id = node_id
        self.location = location
        where = f"node {node_id!r}: " if node_id else (f"{location}: " if location else "")
        super().__init__(f"{where}{message}")


@dataclass(frozen=True, slots=True)
class FlowProblem:
    """One validation finding: which rule, which node (and field), and a sentence saying why."""

    rule: str
    message: str
    node_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"node {self.node_id!r}" if self.node_id else "flow"
        if self.field:
            where += f" ({self.field})"
        return f"{where}: {self.message} [{self.rule}]"


class FlowValidationError(IvrError):
    """A flow document is well-formed but not runnable; ``problems`` lists every finding."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = problems
        lines = "; ".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} problem(s) in flow: {lines}")


class ExpressionError(IvrError):
    """Base of expression-language errors; carries the source text and the offending position."""

    def __init__(self, message: str, expression: str = "", position: int | None = None) -> None:
        self.expression = expression
        self.position = position
        self.reason = message
        at = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{at} in {expression!r}" if expression else message)


class ExpressionSyntaxError(ExpressionError):
    """The text is not a valid expression (or template)."""


class ExpressionEvaluationError(ExpressionError):
    """A valid expression failed at run time (type mismatch, division by zero, unknown name)."""


class ScheduleError(IvrError):
    """A business-hours schedule is malformed (bad time range, unknown time zone)."""


class VersionError(IvrError):
    """A flow version operation is not allowed in the current history."""


class NoDraftError(VersionError):
    """Publishing or editing needs a draft and there is none."""


class NoPublishedVersionError(VersionError):
    """The flow has never been published, so no entry point can run it."""


class UnknownVersionError(VersionError):
    """A version number that the history does not hold."""


class VersionConflictError(VersionError):
    """The draft changed since the caller read it (optimistic concurrency)."""


class IllegalVersionTransitionError(VersionError):
    """A version state change that the transition table forbids."""


class SessionStateError(IvrError):
    """The session was driven out of order (input before start, start twice)."""


class WebhookError(IvrError):
    """Base of webhook errors raised at the edge (configuration, signatures)."""


class UnknownWebhookSecretError(WebhookError):
    """A webhook node names a signing secret that the tenant has not configured."""


class WebhookSignatureError(WebhookError):
    """A received webhook request carries a missing, stale or wrong signature."""
