"""CPU of publishing one agent event on a node with many open event streams (issue 19).

In-process, no sockets: a ``LocalBus`` with the events layer's audience, ``N`` agents' stream
cursors (``Feed``, scope agent, as ``EventsService.open`` makes them) and a supervisor's, then
3,000 ``agent.state_changed`` events, each concerning one agent. Figure per ``N`` (200 and
1,000): microseconds of ``publish`` per event, the median of 5 rounds. It runs against a tree
without keyed subscriptions too (then every stream's filter is asked), for a before/after
side by side: ``python bench/event_bus.py --src <other checkout>/src``.

Run from the repo root in the venv: ``python bench/event_bus.py [--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from _bench import Report, parse_args

EVENTS = 3000


def publish_cost(streams: int) -> float:
    """Seconds of ``publish`` per event with ``streams`` agent streams and a wallboard open."""
    from cloudcc.bus import Event, LocalBus
    from cloudcc.events.audience import ContactAudience
    from cloudcc.events.model import Scope, Selection
    from cloudcc.events.stream import Feed

    bus = LocalBus()
    audience = ContactAudience()
    audience.install(bus)
    keyed = hasattr(bus, "route_by")
    if keyed:
        bus.route_by(audience)

    def accept(selection: Selection) -> Any:
        return lambda event: selection.accepts(event, audience)

    feeds = []
    for i in range(streams):
        options = {"key": f"a{i}"} if keyed else {}
        selection = Selection(Scope.AGENT, f"a{i}")
        feeds.append(Feed(bus, "t", accept(selection), None, maxsize=EVENTS, **options))
    feeds.append(Feed(bus, "t", accept(Selection(Scope.SUPERVISOR)), None, maxsize=EVENTS))
    started = time.perf_counter()
    for k in range(EVENTS):
        agent = f"a{k % streams}"
        bus.publish("t", "agent.state_changed", {"id": agent, "agent_id": agent})
    elapsed = time.perf_counter() - started
    assert isinstance(feeds[0]._sub.queue.get_nowait(), Event)  # a0's first event reached it
    for feed in feeds:
        feed.close()
    return elapsed / EVENTS


def main() -> int:
    args = parse_args(
        "CPU of publishing an agent event with many open event streams",
        [("--src", {"help": "measure the cloudcc package under this folder instead"})],
    )
    if args.src:
        sys.path.insert(0, args.src)
    rounds = 3 if args.quick else 5
    report = Report()
    for streams in (200, 1000):
        cost = statistics.median(publish_cost(streams) for _ in range(rounds))
        report.add(f"event_bus_publish_us_{streams}_streams", cost * 1e6, "us")
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
