"""Optional native kernels for the sequential feature-drift detector, with the numpy path beside them.

``detectors._kernels`` (Rust via PyO3, ``native/kernels/``) is built by ``pip install`` when a Rust
toolchain is on the PATH, like the native decoder. Two steps of
:class:`~detectors.sequential_features.SequentialFeatureDrift` take it when it is there:

- :func:`mid_ranks_block`: each value's mid-rank in its feature's sorted reference, a whole (rows x
  features) batch in one pass instead of a sort and a search per feature;
- :func:`cusum_update`: a CUSUM bank's batch in one pass over the increments instead of eight numpy
  passes (quantise, cumulative sum, running minimum, ...).

Both give the numpy path's results to the bit (integers, and the same float operations):
``tests/detectors/test_kernels.py`` holds them equal on seeded batches with ties, NaN and alarms.
``DRIFTLINE_NATIVE=0`` turns them off with the native decoder (the processor checks its value at
start-up; here an unknown value leaves them on).

>>> import numpy as np
>>> refs = [np.array([1.0, 2.0, 2.0, 3.0]), np.array([0.0, 5.0])]
>>> x = np.array([[2.0, 5.0], [np.nan, -1.0]])
>>> mid_ranks_block(refs, x).tolist() if built() else [[2.0, 1.5], [4.0, 0.0]]
[[2.0, 1.5], [4.0, 0.0]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType

import numpy as np

_kernels: ModuleType | None
try:  # built by pip when cargo was on the PATH
    from detectors import _kernels
except ImportError:  # pragma: no cover -- depends on the install
    _kernels = None

__all__ = ["available", "built", "cusum_update", "mid_ranks_block"]

_OFF = frozenset({"0", "false", "off", "no"})


def built() -> bool:
    """Whether the native kernels were built with this install."""
    return _kernels is not None


def available() -> bool:
    """Built, and not turned off by ``DRIFTLINE_NATIVE`` (read at each call: a batch's few calls)."""
    return _kernels is not None and os.environ.get("DRIFTLINE_NATIVE", "").strip().lower() not in _OFF


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def mid_ranks_block(sorted_refs: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """(rows x features) ``x`` -> how many of column ``j``'s reference ``sorted_refs[j]`` (sorted, no
    NaN) lie below each value, plus half of those equal to it; a NaN value's is the reference's size
    (numpy sorts NaN last): :func:`~detectors.feature_streams.mid_ranks` of every column. Needs the
    kernels built (:func:`available`)."""
    assert _kernels is not None
    x = _f64(x)
    out = np.empty(x.shape)
    _kernels.mid_ranks([_f64(r) for r in sorted_refs], x, out)
    return out


def cusum_update(
    increments: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    run_start: np.ndarray,
    h: np.ndarray,
    first_row: int,
    scale: float,
) -> tuple[int, int, int] | None:
    """One batch of a CUSUM bank in one pass (see :class:`~detectors.cusum_bank.CusumBank`, whose
    numpy path it replaces): ``values`` and ``run_start`` (int64) are updated in place; returns the
    first alarm as (statistic, batch row, quantised value), or None. Needs the kernels built."""
    assert _kernels is not None
    found: tuple[int, int, int] | None = _kernels.cusum_update(
        _f64(increments), np.ascontiguousarray(cols, dtype=np.int64), values, run_start, h, first_row, scale
    )
    return found
