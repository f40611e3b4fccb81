"""Driftline: streaming monitoring for machine-learning models.

The ``driftline`` package is the small shared layer every component imports: event contracts
(:mod:`driftline.contracts`), configuration (:mod:`driftline.config`), errors and the CLI.
"""

from __future__ import annotations

from driftline.errors import ConfigError, DriftlineError, InvalidEvent

__all__ = ["ConfigError", "DriftlineError", "InvalidEvent", "__version__"]
__version__ = "0.1.0"
