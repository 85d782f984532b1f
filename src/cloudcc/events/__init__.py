"""The PaaS event surface: the resumable event stream (WebSocket, long-poll) and webhooks.

Consumers of the bus (``cloudcc.bus``); the HTTP side is ``cloudcc.api.events``. Protocol and
formats: ``docs/events.md``. The names below load on first use, so that the store can import
``cloudcc.events.tables`` without pulling in the services.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudcc.events.model import Scope, Selection, TypeFilter, select_for
    from cloudcc.events.retry import RetryPolicy
    from cloudcc.events.service import EventsService, install
    from cloudcc.events.stream import CutOff, Feed
    from cloudcc.events.targets import TargetPolicy, TargetRefused

_HOMES = {
    "CutOff": "stream",
    "EventsService": "service",
    "Feed": "stream",
    "RetryPolicy": "retry",
    "Scope": "model",
    "Selection": "model",
    "TargetPolicy": "targets",
    "TargetRefused": "targets",
    "TypeFilter": "model",
    "install": "service",
    "select_for": "model",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cloudcc.events' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cloudcc.events.{home}"), name)
