"""Flow documents shipped with cloudcc (the demo tenant's number 4000 runs ``demo.json``)."""

from __future__ import annotations

from importlib import resources

from cloudcc.ivr.model import Flow, parse_flow

DEMO_NUMBER = "4000"


def load_builtin(name: str) -> Flow:
    """Parse the shipped flow ``<name>.json``."""
    return parse_flow(resources.files(__package__).joinpath(f"{name}.json").read_text("utf-8"))


def demo_flow() -> Flow:
    return load_builtin("demo")
