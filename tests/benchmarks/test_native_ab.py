"""benchmarks/native_ab.py times the core both ways on one stream and checks that both ways wrote the
same outputs, byte for byte."""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import pytest

from driftline import native

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "native_ab.py"

if not native.built():  # .ci/run builds it (cargo is there): CI never skips
    if os.environ.get("CI"):
        pytest.fail("the native decoder was not built: is cargo on the PATH of pip install?")
    pytest.skip("the native decoder is not built (no Rust toolchain at install)", allow_module_level=True)


def test_both_ways_give_the_same_outputs_and_a_rate_each(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    bench = runpy.run_path(str(SCRIPT), run_name="native_ab_test")
    assert bench["main"](["--features", "8,20", "--predictions", "3000", "--repeat", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["native_ab"]
    assert [r["features"] for r in rows] == [8, 20]
    for r in rows:
        assert r["same_outputs"] and r["events"] >= 5000 and r["python"] > 0 and r["native"] > 0, r


def test_without_the_decoder_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = runpy.run_path(str(SCRIPT), run_name="native_ab_test")
    monkeypatch.setenv(native.ENV, "0")
    assert bench["main"](["--features", "8", "--predictions", "100"]) == 2
