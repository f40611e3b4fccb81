"""A declared model's reference: the rows its versions' feature drift is measured against.

The spec's ``reference`` (:class:`~driftline.spec.Reference`) says where they come from:

- ``{first: N}`` (or nothing): each version's own first N predictions (``monitor.reference_size``),
  learnt live as before specs existed;
- ``{path: FILE}``: a parquet, CSV or JSON-lines file (by its extension: ``.parquet``/``.pq``,
  ``.csv``, ``.jsonl``/``.ndjson``/``.json``), typically the training set, read ONCE when the
  processor core is built (:func:`load_reference`) -- a missing file, a missing declared column, a
  non-numeric value in a numeric column or fewer than :data:`MIN_ROWS` rows fail there, naming
  ``models.<model>.reference.path``, never at the first event. Every version is monitored against it
  from its first prediction. The prediction score's reference is the file's score column
  (``columns.score``, default ``score``) when it has one; otherwise each version's first
  ``reference_size`` scores, while the features are monitored against the file from the start. A
  file larger than :data:`MAX_ROWS` rows is thinned to that many, evenly spaced (deterministic);
- ``{version: V}``: a new version is compared with version V's reference rows (a copy, taken when
  the new version first appears); if V's state does not exist then (not seen yet, evicted, or its
  reference not complete), the new version falls back to its own first N predictions, and this is
  logged.

>>> import tempfile, pathlib
>>> from driftline.spec import ModelSpec
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> lines = [f"{20 + i % 50},p{i % 3}" for i in range(300)]
>>> _ = (folder / "train.csv").write_text("\\n".join(["age,plan", *lines]))
>>> spec = ModelSpec(features={"age": "numeric", "plan": "categorical"},
...                  reference={"path": str(folder / "train.csv")})
>>> rows = load_reference("churn", spec)
>>> sorted(rows), rows["age"][:3].tolist(), rows["plan"][:2].tolist()
(['age', 'plan'], [20.0, 21.0, 22.0], ['p0', 'p1'])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from driftline.errors import ConfigError
from driftline.spec import ModelSpec
from stream_processors.core.schema import SCORE_COLUMN

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_ROWS", "MIN_ROWS", "ReferenceRows", "load_reference", "pinned_reference"]

log = logging.getLogger(__name__)

ReferenceRows = Mapping[str, np.ndarray]
"""Columns of reference rows: each monitored feature (float or object arrays), maybe SCORE_COLUMN."""

MIN_ROWS = 100
"""Fewest rows a reference file must hold (the drift detectors' smallest reference)."""
MAX_ROWS = 20_000
"""Most rows kept from a reference file: enough for the detectors' thresholds and tests, and small
enough to copy into every version's state (checkpointed)."""

_READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}


def load_reference(model: str, spec: ModelSpec) -> dict[str, np.ndarray] | None:
    """The rows of ``spec``'s reference file as column arrays (None: no file declared); raises
    :class:`~driftline.errors.ConfigError` naming ``models.<model>.reference.path``."""
    if spec.reference is None or spec.reference.path is None:
        return None
    key = f"models.{model}.reference.path"
    frame = _read(Path(spec.reference.path), key)
    kinds = spec.kinds()
    missing = [f for f in kinds if f not in frame.columns]
    if missing:
        raise ConfigError(
            f"{key}: {spec.reference.path!r} has no column for the declared feature(s) {missing}; its "
            f"columns: {sorted(map(str, frame.columns))[:20]} (declare the features under their column "
            "names, or mark the others ignore)"
        )
    if len(frame) < MIN_ROWS:
        raise ConfigError(
            f"{key}: {spec.reference.path!r} has {len(frame)} rows, a reference needs at least {MIN_ROWS} "
            "(supply more rows, or use reference: {first: N} to learn it from the first N predictions)"
        )
    if len(frame) > MAX_ROWS:
        frame = frame.iloc[np.linspace(0, len(frame) - 1, MAX_ROWS).round().astype(int)]
    out = {
        name: _column(frame[name], kind == "numeric", f"{key}: column {name!r}")
        for name, kind in kinds.items()
    }
    score = spec.columns.score
    if score in frame.columns:
        out[SCORE_COLUMN] = _column(frame[score], True, f"{key}: score column {score!r}")
    return out


def pinned_reference(
    model: str, version: str, pinned: str, rows: ReferenceRows | None
) -> dict[str, np.ndarray] | None:
    """A copy of version ``pinned``'s reference ``rows`` for ``version`` (None, logged, when they
    are not there: the version then learns its reference from its own first predictions)."""
    if version == pinned:
        return None  # the pinned version's reference is its own first predictions
    if rows is None:
        log.warning(
            "model %r version %r: the pinned reference version %r has no complete reference here "
            "(not seen yet, evicted, or still learning it); using the version's own first predictions",
            model,
            version,
            pinned,
        )
        return None
    return {name: col.copy() for name, col in rows.items()}


def _read(path: Path, key: str) -> pd.DataFrame:
    import pandas as pd

    kind = _READERS.get(path.suffix.lower())
    if kind is None and path.suffix.lower() == ".json":
        kind = "json"
    if kind is None:
        raise ConfigError(
            f"{key}: cannot tell the format of {str(path)!r} by its extension; use one of "
            f"{sorted([*_READERS, '.json'])} (parquet, CSV, JSON lines)"
        )
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "csv":
            return pd.read_csv(path)
        return pd.read_json(path, lines=True)
    except ImportError as exc:
        raise ConfigError(f"{key}: reading parquet needs pyarrow: pip install pyarrow ({exc})") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: cannot read {str(path)!r}: {exc}") from None


def _column(values: pd.Series, numeric: bool, where: str) -> np.ndarray:
    """A reference column as the core holds live values: floats (NaN for missing), or text (None)."""
    if numeric:
        try:
            return values.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            bad = next(v for v in values.tolist() if not _is_number(v))
            raise ConfigError(f"{where} is declared numeric but holds {bad!r}") from None
    import pandas as pd

    if values.dtype.kind == "f" and bool((values.dropna() % 1 == 0).all()):
        values = values.astype("Int64")  # integer codes that a missing value made floats: "3", not "3.0"
    return np.array([None if pd.isna(v) else str(v) for v in values.tolist()], dtype=object)


def _is_number(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return v is None
    return True
