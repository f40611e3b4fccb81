"""The monitor spec file: declared models, validated at start-up, overridden by the environment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from driftline.config import DriftlineSettings
from driftline.errors import ConfigError

SPEC = """
monitor:
  window_size: 800
models:
  credit-risk:
    task: binary
    features:
      income: numeric
      region: categorical
      customer_id: ignore
    reference: {path: reference.csv}
    segments: [region]
    false_alarms_per_100k: 0.1
    retrain: {trainer: "mypackage.train:fit"}
"""


def write(tmp_path: Path, text: str) -> str:
    pd.DataFrame({"income": [1.0, 2.0], "region": ["n", "s"]}).to_csv(tmp_path / "reference.csv")
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def test_the_documented_shape_loads_and_the_environment_overrides_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLINE_MONITOR__WINDOW_SIZE", "600")
    s = DriftlineSettings.load(config=write(tmp_path, SPEC))
    spec = s.models["credit-risk"]
    assert spec.kinds() == {"income": "numeric", "region": "categorical"}
    assert spec.ignored() == {"customer_id"}
    assert spec.reference is not None and spec.reference.path == str(tmp_path / "reference.csv")
    assert s.monitor.window_size == 600  # the environment wins over the file
    per_model = s.monitor_for("credit-risk")
    assert per_model.false_alarms_per_100k == 0.1 and per_model.window_size == 600
    assert s.monitor_for("another").false_alarms_per_100k is None  # undeclared: the global block


def test_settings_survive_a_trip_through_a_child_environment(tmp_path, monkeypatch) -> None:
    s = DriftlineSettings.load(config=write(tmp_path, SPEC))
    for key, value in s.to_env().items():
        monkeypatch.setenv(key, value)
    assert DriftlineSettings.load() == s


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("task: binary", "task: ranking"), r"models\.credit-risk\.task: Input should be 'binary'"),
        (("income: numeric", "income: numerc"), r"models\.credit-risk\.features\.income\.type"),
        (
            ("segments: [region]", "segmnts: [region]"),
            r"models\.credit-risk\.segmnts: unknown key \(valid keys: .*segments",
        ),
        (
            ("segments: [region]", "segments: [channel]"),
            r"models\.credit-risk\.segments: 'channel' is not a declared",
        ),
        (("reference.csv", "missing.csv"), r"models\.credit-risk\.reference: reference file .*missing\.csv"),
        (
            ('"mypackage.train:fit"', '"mypackage.train.fit"'),
            r"retrain\.trainer: write it as package\.module:function",
        ),
        (("monitor:", "monitr:"), r"spec\.yaml: monitr: unknown key \(valid keys: .*monitor"),
    ],
)
def test_a_bad_spec_fails_at_start_up_naming_the_key_and_the_fix(tmp_path, edit, message) -> None:
    with pytest.raises(ConfigError, match=message):
        DriftlineSettings.load(config=write(tmp_path, SPEC.replace(*edit)))


def test_a_typo_in_an_environment_section_fails(monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLINE_MONITR__WINDOW_SIZE", "500")
    with pytest.raises(ConfigError, match=r"DRIFTLINE_MONITR__WINDOW_SIZE: unknown section 'monitr'"):
        DriftlineSettings.load()


def test_yaml_errors_say_where(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"spec\.yaml: not valid YAML: line \d+"):
        DriftlineSettings.load(config=write(tmp_path, "models:\n  a: [\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        DriftlineSettings.load(config=str(tmp_path / "nope.yaml"))


def test_a_trainer_is_imported_from_the_spec_files_folder_or_its_trainer_path(tmp_path) -> None:
    s = DriftlineSettings.load(config=write(tmp_path, SPEC))
    assert s.models["credit-risk"].retrain.trainer_path == str(tmp_path.resolve())
    moved = SPEC.replace('"mypackage.train:fit"}', '"mypackage.train:fit", trainer_path: lib}')
    s = DriftlineSettings.load(config=write(tmp_path, moved))
    assert s.models["credit-risk"].retrain.trainer_path == str((tmp_path / "lib").resolve())
