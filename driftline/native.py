"""The optional native decoder: a batch of one model version's prediction records into feature columns.

``driftline._native`` (Rust via PyO3, ``native/``) is built by ``pip install`` when a Rust toolchain
is on the PATH and skipped otherwise; every caller has the general path (msgspec, then columns in
numpy) and takes it whenever this one is absent or disabled. It reads only records of the plainest
kind (every feature present, in the schema's order, numbers or null for numeric features, strings
without escapes or null for categorical ones) and names the others, which the caller decodes the
general way: a bad record is always judged -- and dead-lettered with its reason -- by the general
path. What it reads is what the general path reads, to the bit (``tests/driftline/test_native.py``).

The same extension holds the native label join (:class:`JoinBase`, ``native/src/join.rs``), which
``stream_processors.core.join_native`` runs in place of the Python one when it is available.

``DRIFTLINE_NATIVE=0`` turns it off (for an A/B measurement, or to rule it out); unset or ``1``, it is
used when built.

>>> import numpy as np
>>> recs = [b'{"model": "m", "features": {"age": 41, "plan": "pro"}}',
...         b'{"features": {"age": null, "plan": null}, "model": "m"}']
>>> got = feature_columns(recs, ["age", "plan"], [True, False], 1024) if available() else None
>>> got is None or str((got[0].tolist(), got[1], got[2]))
"([[41.0, nan]], [['pro', None]], [])"
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.errors import ConfigError

_native: ModuleType | None
try:  # built by pip when cargo was on the PATH
    from driftline import _native
except ImportError:  # pragma: no cover -- depends on the install
    _native = None

__all__ = ["ENV", "available", "built", "enabled", "feature_columns", "JoinBase"]

ENV = "DRIFTLINE_NATIVE"
_ON, _OFF = {"", "1", "true", "on", "yes"}, {"0", "false", "off", "no"}


def built() -> bool:
    """Whether the native decoder was built with this install."""
    return _native is not None


def enabled() -> bool:
    """Whether :envvar:`DRIFTLINE_NATIVE` allows the native decoder (unset: yes); an unknown value
    is a :class:`~driftline.errors.ConfigError` naming the variable and its values."""
    value = os.environ.get(ENV, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(
        f"{ENV}={os.environ[ENV]!r}: use 1 (the native decoder when built; the default) or 0 (off)"
    )


def available() -> bool:
    """Built and enabled."""
    return built() and enabled()


def feature_columns(
    records: Sequence[bytes], names: Sequence[str], numeric: Sequence[bool], max_bytes: int
) -> tuple[np.ndarray, list[list[Any]], list[int]] | None:
    """The ``features`` of each prediction record as columns: a (numeric features x records) float
    array and a list of values per categorical feature, in ``names`` order within each kind, and the
    positions of the records it did not read (see the module; also those with a categorical value of
    more than ``max_bytes`` bytes), whose cells hold NaN and None. None if it was not built."""
    if _native is None:
        return None
    flat, categorical, failed = _native.feature_columns(list(records), list(names), list(numeric), max_bytes)
    matrix = np.frombuffer(flat, dtype=np.float64).reshape(sum(map(bool, numeric)), len(records))
    return matrix, categorical, failed


if TYPE_CHECKING:
    from driftline._native import Join as JoinBase
elif _native is not None:
    JoinBase = _native.Join
else:  # pragma: no cover -- depends on the install

    class JoinBase:
        """Stands in for the native label join when it was not built: never made (see available)."""

        def __init__(self, *args: object) -> None:
            raise RuntimeError("the native label join was not built (driftline.native.built() is False)")
