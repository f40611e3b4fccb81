"""Errors raised by :mod:`detectors` (all subclasses of :class:`driftline.errors.DriftlineError`)."""

from __future__ import annotations

from collections.abc import Iterable

from driftline.errors import DriftlineError

__all__ = ["DetectorError", "UnknownNameError"]


class DetectorError(DriftlineError, ValueError):
    """A detector was configured or fed wrongly; the message says what to change."""


class UnknownNameError(DetectorError, KeyError):
    """A test or detector name is not in the registry; the message lists the valid names.

    >>> err = UnknownNameError("test", "nope", ["ks", "psi"])
    >>> str(err)
    "unknown test 'nope'; valid names: ks, psi"
    >>> isinstance(err, KeyError) and isinstance(err, ValueError)
    True
    """

    def __init__(self, what: str, name: str, valid: Iterable[str]) -> None:
        self.what = what
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {what} {name!r}; valid names: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0])
