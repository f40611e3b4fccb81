"""DDM (drift detection method) for error streams, wrapping river's."""

from __future__ import annotations

from river import drift

from ._polarity import check_int
from .base import DriftSignal, StreamDetector

__all__ = ["DDM"]


class DDM(StreamDetector):
    """DDM tracks the error rate ``p`` and its standard deviation ``s`` and alarms when ``p + s``
    exceeds ``p_min + drift_threshold * s_min``. It only ever alarms on increases of a 0/1 error
    stream (the polarity an error stream needs); inputs must be 0/1.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> [(s.index, s.direction) for s in DDM().update_many(errors)]
    [(2227, 'increase')]
    """

    name = "ddm"

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        self.warm_start = check_int("warm_start", warm_start, 1)
        if warning_threshold <= 0:
            raise ValueError(f"warning_threshold must be > 0, got {warning_threshold}")
        if drift_threshold <= 0:
            raise ValueError(f"drift_threshold must be > 0, got {drift_threshold}")
        self.warning_threshold = float(warning_threshold)
        self.drift_threshold = float(drift_threshold)
        super().__init__()

    def _reset(self) -> None:
        self.n = 0
        self._river = drift.binary.DDM(
            warm_start=self.warm_start,
            warning_threshold=self.warning_threshold,
            drift_threshold=self.drift_threshold,
        )

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        d = self._river
        d.update(x)
        if not d.drift_detected:
            return None
        p = float(d._p.get())
        s = (p * (1 - p) / max(d._p.n, 1)) ** 0.5
        limit = float(d._p_min + self.drift_threshold * d._s_min)  # p_min + drift_threshold * s_min
        return DriftSignal(
            self.name, self.n, "p_plus_s", p + s, limit, "increase", baseline=float(d._p_min), recent=p
        )
