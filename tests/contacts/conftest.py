"""The in-process node with its voice side (``desk``) for the contact layer's tests."""

from tests.agents.conftest import desk

__all__ = ["desk"]
