"""A model version's schema: each feature's kind, and a batch of predictions as column arrays.

The kinds are read off the first prediction a version serves; later predictions whose values
contradict them (text in a numeric feature) are reported, not monitored. The prediction score
travels with the features as :data:`SCORE_COLUMN`, so prediction drift is tested like a feature.

>>> from driftline.contracts import Prediction
>>> def pred(i, age):
...     return Prediction(prediction_id=str(i), model="m", model_version="1", event_time=0.0,
...                       features={"age": age, "plan": "gold"}, prediction=1, score=0.8)
>>> kinds = infer_kinds(pred(0, 41))
>>> kinds
{'age': 'numeric', 'plan': 'categorical'}
>>> cols, bad = columns([pred(0, 41), pred(1, "old"), pred(2, None)], kinds)
>>> cols["age"].tolist(), cols[SCORE_COLUMN].tolist()
([41.0, nan, nan], [0.8, 0.8, 0.8])
>>> bad
[(1, "feature 'age' must be numeric for this model version, got 'old'")]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Literal

import msgspec
import numpy as np

from driftline import native
from driftline.contracts import (
    MAX_STRING,
    SCHEMA_VERSION,
    LabelValue,
    Name,
    NonEmpty,
    Prediction,
    Probabilities,
    Probability,
)

__all__ = ["SCORE_COLUMN", "Kind", "PredictionHead", "columns", "infer_kinds", "native_columns"]

SCORE_COLUMN = "prediction_score"
WIDE = 16  # features from which a batch is converted as one table (see :func:`columns`)
Kind = Literal["numeric", "categorical"]


class PredictionHead(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A prediction record decoded without its features: the same fields and checks as
    :class:`~driftline.contracts.Prediction` otherwise (a record that is not a valid prediction for any
    other field fails here the same way). The processor decodes a model's records so while the
    native decoder (:mod:`driftline.native`) reads their features into columns (:func:`native_columns`).

    The join holds a head as it is (:func:`~.scored.hold` sets ``raw``: its record's bytes, which its
    scored event carries), where a whole prediction is copied into a ``HeldPrediction``; like that one,
    it has no features (``features`` is empty)."""

    schema_version: int = SCHEMA_VERSION
    prediction_id: NonEmpty
    model: Name
    model_version: Name
    event_time: float
    prediction: LabelValue
    score: Probability | None = None
    probabilities: Probabilities | None = None

    raw: msgspec.Raw = msgspec.Raw(b"")  # (set by hold: a record's own "raw" field is overwritten)

    __post_init__ = Prediction.__post_init__  # type: ignore[misc]  # (the same checks, inline)

    @property
    def features(self) -> dict[str, object]:
        """None decoded (read by the native decoder into columns, or held as the record's bytes)."""
        return {}


def infer_kinds(p: Prediction) -> dict[str, Kind]:
    """Numbers are numeric features; text, booleans and missing values are categorical."""
    return {
        name: "numeric" if isinstance(v, (int, float)) and not isinstance(v, bool) else "categorical"
        for name, v in p.features.items()
    }


def columns(
    preds: list[Prediction], kinds: dict[str, Kind]
) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
    """Column arrays for a version's schema, and the rows whose values contradict it.

    When every prediction of the batch carries exactly the schema's features in its order (the usual
    case: one service, one serializer) and there are at least :data:`WIDE` features, the numeric
    features become one (rows x features) float array in a single numpy call, each column a slice of
    it, and the categorical ones one object array -- not one Python loop over the batch per feature
    (at 200 features, ~10 instead of 87 us per prediction; below ~16 features the loops are cheaper).
    Otherwise, or when a numeric value does not convert, the values are looked up per row; both ways
    give the same columns."""
    feats = [p.features for p in preds]
    tables = _tables(feats, kinds) if len(kinds) >= WIDE else None
    cols: dict[str, np.ndarray] = {}
    bad: dict[int, str] = {}
    for j, (name, kind) in enumerate(kinds.items()):
        values: list[object] | np.ndarray
        if tables is not None:
            values = tables[j]
            if kind == "numeric" and tables[j].dtype == float:
                cols[name] = tables[j]
                continue
        else:
            values = [f.get(name) for f in feats]
        if kind == "numeric":
            try:
                cols[name] = np.array(values, dtype=float)
            except (TypeError, ValueError):
                cols[name] = _numeric_or_nan(name, list(values), bad)
        else:
            listed = values if isinstance(values, list) else values.tolist()
            if set(map(type, listed)) <= _TEXT:  # text already (the usual case): no str() per value
                cols[name] = np.array(listed, dtype=object)
            else:
                cols[name] = np.array([None if v is None else str(v) for v in listed], dtype=object)
    cols[SCORE_COLUMN] = np.array([np.nan if p.score is None else p.score for p in preds], dtype=float)
    return cols, sorted(bad.items())


_TEXT = {str, type(None)}


def native_columns(
    preds: Sequence[PredictionHead], raws: Sequence[bytes], kinds: dict[str, Kind]
) -> tuple[dict[str, np.ndarray], list[int]] | None:
    """:func:`columns` of the predictions decoded from ``raws`` (their heads: ``preds``), read by the
    native decoder (:mod:`driftline.native`) straight from the records, and the positions of those it
    did not read (their cells empty: the caller decodes those records whole and fills them); None
    when it is unavailable. No row it read is bad: it reads only values that fit their kinds."""
    names = list(kinds)
    numeric = [k == "numeric" for k in kinds.values()]
    got = native.feature_columns(raws, names, numeric, MAX_STRING)
    if got is None:
        return None
    matrix, categorical, failed = got
    cols: dict[str, np.ndarray] = {}
    nums, cats = iter(matrix), iter(categorical)
    for name, is_numeric in zip(names, numeric, strict=True):
        cols[name] = next(nums) if is_numeric else np.array(next(cats), dtype=object)
    cols[SCORE_COLUMN] = np.array([np.nan if p.score is None else p.score for p in preds], dtype=float)
    return cols, failed


def _tables(feats: Sequence[Mapping[str, object]], kinds: Mapping[str, Kind]) -> list[np.ndarray] | None:
    """Each feature's column (numeric: float, if all of them convert; else object), if every row has
    exactly the schema's features in its order; else None. The values go into one object table in a
    single pass; each run of adjacent numeric features converts to float in one call (a view's copy)."""
    names = tuple(kinds)
    if not feats or not names or any(tuple(f) != names for f in feats):
        return None
    n, m = len(feats), len(names)
    table = np.fromiter(chain.from_iterable([f.values() for f in feats]), dtype=object, count=n * m)
    table = table.reshape(n, m)
    out = [table[:, j] for j in range(m)]
    numeric = [k == "numeric" for k in kinds.values()]
    start = 0
    while start < m:
        if not numeric[start]:
            start += 1
            continue
        stop = start + 1
        while stop < m and numeric[stop]:
            stop += 1
        try:
            block = table[:, start:stop].astype(float)
        except (TypeError, ValueError):  # text in a numeric feature: those columns take the slow path
            start = stop
            continue
        for j in range(start, stop):
            out[j] = block[:, j - start]
        start = stop
    return out


def _numeric_or_nan(name: str, values: Sequence[object], bad: dict[int, str]) -> np.ndarray:
    """The slow path of a numeric column holding text: NaN there, and the row recorded as bad."""
    arr = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            arr[i] = np.nan if v is None else float(v)
        else:
            bad.setdefault(i, f"feature {name!r} must be numeric for this model version, got {v!r}")
    return arr
