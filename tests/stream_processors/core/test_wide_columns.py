"""A wide version's batch (many features) is converted as one table: the same columns and the same
rejected rows as the row-by-row conversion, whatever the batch holds (text in a numeric feature,
missing values, a row with its features in another order, a row missing a feature)."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.contracts import Prediction
from stream_processors.core import schema
from stream_processors.core.schema import columns, infer_kinds


def _pred(i: int, features: dict[str, float | str | bool | None]) -> Prediction:
    return Prediction(
        prediction_id=f"p{i}",
        model="m",
        model_version="1",
        event_time=float(i),
        features=features,
        prediction=1,
        score=0.5,
    )


def _batch(width: int, plan_at: int | None = None) -> list[Prediction]:
    """``plan_at``: the categorical feature's position (default last: one run of numeric features)."""
    rng = np.random.default_rng(3)
    rows: list[dict[str, float | str | bool | None]] = []
    for i in range(40):
        items: list[tuple[str, float | str | bool | None]]
        items = [(f"x{k}", float(rng.normal())) for k in range(width)]
        items.insert(width if plan_at is None else plan_at, ("plan", "abc"[i % 3]))
        rows.append(dict(items))
    rows[5]["x1"] = "high"  # text in a numeric feature: rejected
    rows[6]["x2"] = None  # missing value
    rows[7]["plan"] = True  # a boolean category, as text
    rows[8] = dict(reversed(list(rows[8].items())))  # same features, another order
    return [_pred(i, r) for i, r in enumerate(rows)]


@pytest.mark.parametrize(("width", "plan_at"), [(20, None), (200, None), (30, 0), (30, 12)])
def test_table_conversion_equals_row_by_row(
    width: int, plan_at: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _batch(width, plan_at)
    kinds = infer_kinds(batch[0])
    uniform = [p for k, p in enumerate(batch) if k != 8]  # every row in the schema's order: one table
    for preds in (uniform, batch):
        wide, wide_bad = columns(preds, kinds)
        monkeypatch.setattr(schema, "WIDE", 10**6)  # forces the row-by-row conversion
        narrow, narrow_bad = columns(preds, kinds)
        monkeypatch.undo()
        assert wide_bad == narrow_bad
        assert [b for b, _ in wide_bad] == [5]
        assert list(wide) == list(narrow)
        for name, col in wide.items():
            assert col.dtype == narrow[name].dtype, name
            assert np.array_equal(col, narrow[name], equal_nan=col.dtype == float), name
    assert wide["plan"][7] == "True" and np.isnan(wide["x2"][6])


def test_numeric_features_convert_in_one_call_when_they_all_are_numbers() -> None:
    batch = [p for k, p in enumerate(_batch(30)) if k not in (5, 8)]  # no text, one order
    kinds = infer_kinds(batch[0])
    cols, bad = columns(batch, kinds)
    assert bad == []
    assert cols["x0"].base is not None and cols["x0"].base is cols["x29"].base  # one float table
    assert np.isnan(cols["x2"][5]) and cols["plan"].dtype == object  # row 6 is the 5th kept row
