"""benchmarks/decode_options.py compares like with like: every way of decoding a batch gives the
processor's own columns, and a difference is caught before anything is timed."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "decode_options.py"


@pytest.fixture(scope="module")
def bench() -> dict:
    return runpy.run_path(str(SCRIPT), run_name="decode_options_test")


@pytest.mark.parametrize("features", [8, 20])
def test_every_option_gives_the_processors_columns(bench: dict, features: int) -> None:
    raws = bench["records"](features, 300)
    kinds = bench["infer_kinds"](bench["_PRED"].decode(raws[0]))
    assert set(kinds.values()) == {"numeric", "categorical"}
    options = bench["decoders"](kinds)
    pytest.importorskip("pyarrow")  # (installed with the dev extra: mlflow needs it)
    native = (
        ["native"] if bench["native"].available() else []
    )  # (built in CI: tests/driftline/test_native.py)
    assert [n for n in options if n != "floor"] == ["dict", "struct", "arrow", *native]
    today = options["dict"](raws)
    assert len(today["x0"]) == len(raws) and today["c0"].dtype == object
    for name in ("struct", "arrow", *native):
        assert bench["same_columns"](options[name](raws), today), name
    assert len(options["floor"](raws)) == len(raws)


def test_a_different_value_is_caught(bench: dict) -> None:
    same = bench["same_columns"]
    base = {"x": np.array([1.0, np.nan]), "c": np.array(["a", None], dtype=object)}
    assert same(base, {k: v.copy() for k, v in base.items()})
    assert not same(base, base | {"x": np.array([1.0, 2.0])})
    assert not same(base, base | {"c": np.array(["a", "b"], dtype=object)})
    assert not same(base, {"x": base["x"]})


def test_the_command_prints_a_row_per_feature_count(bench: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench["main"](["--features", "8,20", "--predictions", "400", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["decode_options"]
    assert [r["features"] for r in rows] == [8, 20]
    for r in rows:
        assert r["predictions"] == 400
        assert all(r[f"{k}_us"] > 0 for k in ("dict", "struct", "floor", "statistics")), r
