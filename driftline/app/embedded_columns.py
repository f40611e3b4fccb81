"""Tables in, encoded events out: how the embedded :class:`~driftline.app.embedded.Monitor` and
``driftline replay`` turn a user's predictions and labels into the records the processor core reads.

Columnar: every column is converted once (pandas/numpy), then one dict per row is built by zipping
the converted columns and encoded with msgspec -- no per-row pandas access. Each event is exactly
what a service would have produced with the SDK, so the core validates it the same way: a row the
core cannot take (no prediction id, an event time that is no time) becomes a dead letter with its
reason, never an exception here.

Conventions, per model, from its spec's ``columns`` (:class:`~driftline.spec.Columns`):

- ``event_time``: epoch seconds (numbers) or ISO 8601 text (a time without a zone is UTC), or a
  pandas datetime column;
- ids, versions, predictions and labels read as floats that are whole numbers (a CSV integer column
  with a gap) are written as integers -- ``7.0`` and ``7`` name the same prediction whatever the file
  format;
- features: every column that is not one of the mapped ones; a declared categorical feature is sent as
  text, so a CSV that read ``region`` codes as numbers means the same as a parquet file that kept text.

>>> import pandas as pd
>>> epoch_seconds(pd.Series(["1970-01-01T00:01:00Z", "90", None, "soon"]))
[60.0, 90.0, None, 'soon']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from driftline.errors import ConfigError
from driftline.spec import Columns, ModelSpec
from driftline.transport import Record

__all__ = ["Encoded", "as_frame", "encode_labels", "encode_predictions", "epoch_seconds", "read_table"]

_ENCODER = msgspec.json.Encoder(enc_hook=str)  # a value of an unknown type is sent as its text
_EPOCH = pd.Timestamp(0, tz="UTC")
_READERS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def read_table(path: str | Path) -> pd.DataFrame:
    """A parquet, CSV or JSON-lines file (by its extension) as a DataFrame."""
    p = Path(path)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        raise ConfigError(f"{p.name}: unknown file type {p.suffix!r} (use {', '.join(sorted(_READERS))})")
    if not p.is_file():
        raise ConfigError(f"{str(p)!r} does not exist")
    if kind == "parquet":
        return pd.read_parquet(p)
    if kind == "csv":
        return pd.read_csv(p, float_precision="round_trip")  # the file's numbers exactly, as parquet
    return pd.read_json(p, lines=True, convert_dates=False, dtype=False, precise_float=True)


def as_frame(data: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A DataFrame as is; rows (dicts) as a DataFrame (a key missing from a row reads as missing)."""
    if isinstance(data, pd.DataFrame):
        return data
    return pd.DataFrame.from_records(list(data))


def epoch_seconds(col: pd.Series) -> list[Any]:
    """Event times as epoch seconds; a value that is neither a number nor an ISO 8601 time is kept as
    it was (the core dead-letters it with the reason), a missing one is None."""
    if pd.api.types.is_datetime64_any_dtype(col):
        t = pd.to_datetime(col, utc=True)
        return _nullable(((t - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=float))
    if pd.api.types.is_bool_dtype(col):
        return _plain(col)
    if pd.api.types.is_numeric_dtype(col):
        return _nullable(col.to_numpy(dtype=float, na_value=np.nan))
    numbers = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    todo = np.isnan(numbers) & col.notna().to_numpy()
    if todo.any():
        text = col[todo].astype(str)
        t = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        numbers[todo] = ((t - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
    out = _nullable(numbers)
    for i in np.flatnonzero(todo & np.isnan(numbers)):  # neither: the core says why
        out[i] = col.iat[i]
    return out


def _nullable(values: np.ndarray) -> list[Any]:
    return [None if v != v else v for v in values.tolist()]  # NaN -> None


def _plain(col: pd.Series) -> list[Any]:
    """Python values, missing ones as None (pandas' NA, NaN and NaT included)."""
    values = col.astype(object).where(col.notna(), None)
    return values.tolist()


def _whole(col: pd.Series) -> list[Any]:
    """Ids, versions, classes: floats that are whole numbers as ints (``7.0`` names what ``7`` does)."""
    if pd.api.types.is_float_dtype(col):
        finite = col.dropna()
        if len(finite) and bool((finite == np.floor(finite)).all()) and finite.abs().max() < 2**53:
            return [None if v is None else int(v) for v in _nullable(col.to_numpy(dtype=float))]
    return _plain(col)


def _text(col: pd.Series) -> list[Any]:
    return [None if v is None else str(v) for v in _whole(col)]


def _feature(col: pd.Series, kind: str | None) -> list[Any]:
    if kind == "categorical":
        return _text(col)
    if pd.api.types.is_bool_dtype(col):
        return _plain(col)
    if pd.api.types.is_numeric_dtype(col):
        return _nullable(col.to_numpy(dtype=float, na_value=np.nan))
    return _plain(col)


@dataclass
class Encoded:
    """One table's events, encoded, in its row order: ``times`` (NaN where there is none) orders a
    replay; ``versions`` are the (model, version) pairs the rows name."""

    records: list[Record]
    times: np.ndarray
    versions: set[tuple[str, str]] = field(default_factory=set)


def _models(df: pd.DataFrame, specs: Mapping[str, ModelSpec], model: str | None) -> list[tuple[str, Any]]:
    """(model, row positions) groups: the model column if the table has one, else ``model``, else the
    spec's only model."""
    column = next((s.columns.model for s in specs.values() if s.columns.model in df.columns), None)
    if column is None and "model" in df.columns and not specs:
        column = "model"
    if column is not None:
        names = np.asarray(_text(df[column]), dtype=object)
        return [(str(m), np.flatnonzero(names == m)) for m in pd.unique(names)]
    if model is None:
        if len(specs) != 1:
            have = ", ".join(specs) or "none"
            raise ConfigError(
                f"which model are these rows for? Add a 'model' column, or name it (Monitor(..., "
                f"model=NAME)); models in the spec: {have}"
            )
        model = next(iter(specs))
    return [(model, slice(None))]


def _need(df: pd.DataFrame, column: str, what: str, model: str) -> pd.Series:
    if column not in df.columns:
        raise ConfigError(
            f"{what}: no column {column!r} (models.{model}.columns names it); "
            f"columns: {', '.join(map(str, df.columns))}"
        )
    return df[column]


def _times(values: Sequence[Any]) -> np.ndarray:
    return np.array([v if type(v) is float else np.nan for v in values], dtype=float)


def encode_predictions(
    df: pd.DataFrame, topic: str, specs: Mapping[str, ModelSpec], model: str | None = None, first: int = 0
) -> Encoded:
    """The prediction events of ``df``; ``first``: the offset its first row gets (offsets count rows,
    so a dead letter says which row it was)."""
    out = Encoded([], np.empty(0))
    times: list[np.ndarray] = []
    for name, rows in _models(df, specs, model):
        part, offsets = _part(df, rows, first)
        records, t, versions = _predictions(part, name, specs.get(name), topic, offsets)
        out.records += records
        out.versions |= versions
        times.append(t)
    out.times = np.concatenate(times) if times else np.empty(0)
    return _in_row_order(out)


def _part(df: pd.DataFrame, rows: Any, first: int) -> tuple[pd.DataFrame, list[int]]:
    """The rows of one model, and their offsets (``first`` + their positions in the table)."""
    if isinstance(rows, slice):
        return df, list(range(first, first + len(df)))
    return df.iloc[rows], (rows + first).tolist()


def _predictions(
    df: pd.DataFrame, model: str, spec: ModelSpec | None, topic: str, offsets: list[int]
) -> tuple[list[Record], np.ndarray, set[tuple[str, str]]]:
    cols = spec.columns if spec else Columns()
    ids = _text(_need(df, cols.prediction_id, "predictions", model))
    when = epoch_seconds(_need(df, cols.event_time, "predictions", model))
    predicted = _whole(_need(df, cols.prediction, "predictions", model))
    n = len(df)
    versions = _text(df[cols.model_version]) if cols.model_version in df.columns else ["1"] * n
    score = _feature(df[cols.score], None) if cols.score in df.columns else [None] * n
    probs = cols.probabilities or {}
    mapped = {cols.prediction_id, cols.event_time, cols.prediction, cols.score, cols.model}
    mapped |= {cols.model_version, cols.label, *probs.values()}
    names = [str(c) for c in df.columns if c not in mapped]
    declared = spec.features if spec else {}
    features = [_feature(df[c], declared[c].type if c in declared else None) for c in names]
    rows = (
        [dict(zip(names, vals, strict=True)) for vals in zip(*features, strict=True)] if names else [{}] * n
    )
    if probs:
        p_cols = [_feature(_need(df, c, "predictions", model), None) for c in probs.values()]
        p_rows: list[Any] = [dict(zip(probs, v, strict=True)) for v in zip(*p_cols, strict=True)]
    else:
        p_rows = [None] * n
    key, enc = model.encode(), _ENCODER.encode
    records = []
    for off, pid, t, ver, pred, sc, feats, pr in zip(
        offsets, ids, when, versions, predicted, score, rows, p_rows, strict=True
    ):
        event = {"prediction_id": pid, "model": model, "model_version": ver, "event_time": t}
        event |= {"features": feats, "prediction": pred, "score": sc}
        if pr is not None:
            event["probabilities"] = pr
        ts = t if type(t) is float else 0.0
        records.append(Record(topic, enc(event), key, 0, off, ts))
    return records, _times(when), {(model, v) for v in set(versions) if v is not None}


def encode_labels(
    df: pd.DataFrame, topic: str, specs: Mapping[str, ModelSpec], model: str | None = None, first: int = 0
) -> Encoded:
    """The label events of ``df`` (see :func:`encode_predictions`)."""
    out = Encoded([], np.empty(0))
    times: list[np.ndarray] = []
    for name, rows in _models(df, specs, model):
        spec = specs.get(name)
        cols = spec.columns if spec else Columns()
        part, offsets = _part(df, rows, first)
        ids = _text(_need(part, cols.prediction_id, "labels", name))
        when = epoch_seconds(_need(part, cols.event_time, "labels", name))
        labels = _whole(_need(part, cols.label, "labels", name))
        key, enc = name.encode(), _ENCODER.encode
        for off, pid, t, lab in zip(offsets, ids, when, labels, strict=True):
            event = {"prediction_id": pid, "model": name, "event_time": t, "label": lab}
            ts = t if type(t) is float else 0.0
            out.records.append(Record(topic, enc(event), key, 0, off, ts))
        times.append(_times(when))
    out.times = np.concatenate(times) if times else np.empty(0)
    return _in_row_order(out)


def _in_row_order(enc: Encoded) -> Encoded:
    """Rows of several models were encoded model by model: put them back in the table's order."""
    order = np.argsort(np.array([r.offset for r in enc.records], dtype=np.int64), kind="stable")
    if len(order) and not (order == np.arange(len(order))).all():
        enc.records = [enc.records[i] for i in order]
        enc.times = enc.times[order]
    return enc
