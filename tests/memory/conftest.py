"""The in-process node with its voice side (``desk``) for the memory tests."""

from tests.agents.conftest import desk

__all__ = ["desk"]
