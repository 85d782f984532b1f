"""The PaaS event surface: the resumable event stream (WebSocket, long-poll) and webhooks.

Consumers of the bus (``cloudcc.bus``); the HTTP side is ``cloudcc.api.events``. Protocol and
formats: ``docs/events.md``.
"""

from cloudcc.events.model import Scope, Selection, TypeFilter, select_for
from cloudcc.events.retry import RetryPolicy
from cloudcc.events.service import EventsService, install
from cloudcc.events.stream import CutOff, Feed
from cloudcc.events.targets import TargetPolicy, TargetRefused

__all__ = [
    "CutOff",
    "EventsService",
    "Feed",
    "RetryPolicy",
    "Scope",
    "Selection",
    "TargetPolicy",
    "TargetRefused",
    "TypeFilter",
    "install",
    "select_for",
]
