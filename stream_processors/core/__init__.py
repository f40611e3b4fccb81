"""The pure processor core: batches of decoded events in, scored events, metrics, alerts out.

No I/O, no Kafka, no faust: runners drive it. Imports :mod:`detectors` and the ground floor only.
"""

from __future__ import annotations

from .processor import CoreOutput, ProcessorCore

__all__ = ["CoreOutput", "ProcessorCore"]
