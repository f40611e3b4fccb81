"""The root of every error Driftline raises on purpose.

Each layer has its own subclasses in its own ``exceptions`` module (or here, for the shared ones);
messages say what to change to fix the problem.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DriftlineError", "InvalidEvent"]


class DriftlineError(Exception):
    """Root of all Driftline errors."""


class ConfigError(DriftlineError, ValueError):
    """A configuration value is wrong; raised at start-up with the fix in the message."""


class InvalidEvent(DriftlineError, ValueError):
    """An event on the wire is not a valid Driftline event (bad JSON, missing field, wrong type)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
