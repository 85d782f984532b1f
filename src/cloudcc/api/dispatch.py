"""Route dispatch by path prefix, in front of FastAPI's linear route matching.

FastAPI tries an app's routes in order, each included router its own (with bookkeeping per
try, and the chosen router's routes twice): ``GET /api/v1/agents`` was matched against ~40
route patterns. ``RouteIndex`` keys every route on the first segments of the paths it can
match (``/api/v1/agents``) and hands a request to a view of the app's router that holds only
the routes of the request's key, in their order, included as before (same prefix and
settings). Only those routes' patterns can match the path, so the view chooses the route the
full router would choose. What the view does not answer (no route, a trailing-slash redirect
to another key) goes on to the full router, as does a path whose key no route has.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

KEY_SEGMENTS = 4  # "", "api", "v1", "agents": the resource of an /api/v1 path

Key = tuple[str, ...]


def _key(path: str) -> Key | None:
    """The first ``KEY_SEGMENTS`` segments of a path, or None if it has fewer."""
    parts = path.split("/", KEY_SEGMENTS)
    if len(parts) < KEY_SEGMENTS:
        return None
    return tuple(parts[:KEY_SEGMENTS])


def _keys(template: str | None) -> set[Key] | None:
    """The keys of the paths a route template can match; None: paths of any key.

    The segments before the first one that holds a parameter are literal: every path the
    template matches starts with exactly them (a parameter never matches across a "/"
    before the segment that holds it). A template without parameters matches one path."""
    if not template:
        return None
    parts = template.split("/")
    literal: list[str] = []
    for part in parts:
        if "{" in part:
            break
        literal.append(part)
    if len(literal) == len(parts) and len(parts) < KEY_SEGMENTS:
        return set()  # one short path: it has no key, the full router serves it
    if len(literal) < KEY_SEGMENTS:
        return None
    return {tuple(literal[:KEY_SEGMENTS])}


def _route_keys(route: BaseRoute) -> set[Key] | None:
    if isinstance(route, Mount):
        return _keys(route.path.rstrip("/") + "/{path}")
    if isinstance(route, (Route, WebSocketRoute)):
        return _keys(route.path_format)
    return None  # a host, anything else: a candidate for every path


class _Entry:
    """One top-level route of the app and, if it is an included router, the same inclusion
    narrowed to the routes of each key."""

    def __init__(self, route: BaseRoute) -> None:
        from fastapi.routing import _EffectiveRouteContext, _IncludedRouter

        self.route = route
        self.keys: set[Key] | None = None  # None: a candidate for every key
        self.narrowed: dict[Key, BaseRoute] = {}
        if not isinstance(route, _IncludedRouter):
            self.keys = _route_keys(route)
            return
        inner = route.original_router
        if inner._low_priority_routes or route.effective_low_priority_routes():
            return  # frontend routes have precedence rules of their own: not indexed
        per_route: list[tuple[BaseRoute, set[Key] | None]] = []
        for child in inner.routes:
            if isinstance(child, _IncludedRouter):
                return  # nested inclusions: not narrowed (the API has one level)
            context = route._build_effective_context(child)
            if context is None:
                continue  # FastAPI does not match it either
            if not isinstance(context, _EffectiveRouteContext):
                return
            if context.starlette_route is not None:
                child_keys = _route_keys(context.starlette_route)
            elif isinstance(context.original_route, APIRoute):
                child_keys = _keys(context.path_format)
            else:
                return
            per_route.append((child, child_keys))
        if any(ks is None for _, ks in per_route):
            return
        self.keys = set().union(*(ks for _, ks in per_route if ks))
        for key in self.keys:
            routes = [r for r, ks in per_route if ks and key in ks]
            if len(routes) == len(per_route):
                self.narrowed[key] = route
                continue
            narrow = copy.copy(inner)
            narrow.routes = routes
            self.narrowed[key] = _IncludedRouter(
                original_router=narrow, include_context=route.include_context
            )

    def for_key(self, key: Key) -> BaseRoute | None:
        if self.keys is None:
            return self.route
        if key not in self.keys:
            return None
        return self.narrowed.get(key, self.route)


class RouteIndex:
    """The router's entry point (``router.middleware_stack``): a view per key."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.full = router.app
        self._views: dict[Key, APIRouter] = {}
        self._built_for: int | None = None  # len(router.routes) when built

    def build(self) -> None:
        """Index the routes (on the first request, and again when routers were added)."""
        router = self.router
        self._built_for = len(router.routes)
        self._views = {}
        if router._low_priority_routes:
            return  # frontend routes: their own precedence rules; keep the full router
        entries = [_Entry(route) for route in router.routes]
        keys: set[Key] = set().union(*(e.keys for e in entries if e.keys))
        for key in keys:
            view = copy.copy(router)
            view.routes = [r for r in (e.for_key(key) for e in entries) if r is not None]
            view.default = self.full  # nothing matched here: the full router decides
            self._views[key] = view

    def view(self, path: str) -> APIRouter | None:
        if self._built_for != len(self.router.routes):
            self.build()
        key = _key(path)
        return self._views.get(key) if key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            view = self.view(scope["path"])
            if view is not None:
                scope.setdefault("router", self.router)
                await view.app(scope, receive, send)
                return
        await self.full(scope, receive, send)


def install(app: FastAPI) -> RouteIndex:
    """Put a ``RouteIndex`` in front of the app's router (built on the first request)."""
    index = RouteIndex(app.router)
    app.router.middleware_stack = index
    return index


def candidates(index: RouteIndex, path: str) -> list[Any] | None:
    """The routes the index tries for ``path`` (None: the full router); for tests."""
    view = index.view(path)
    return None if view is None else list(view.routes)
