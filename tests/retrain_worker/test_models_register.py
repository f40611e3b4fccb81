"""``driftline models register``: a model file made elsewhere becomes the champion, verified by its
SHA-256 whenever it is loaded; a file that is not a model, or a version already taken, is refused."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from driftline.app.cli import app
from driftline.registry import LocalModelRegistry, RegistryError, sha256_of
from producers.serving import ModelServer


def _model_file(tmp_path: Path, name: str = "model.pkl") -> Path:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    path = tmp_path / name
    path.write_bytes(pickle.dumps(model))  # a plain pickle: joblib files work the same way
    return path


def test_a_registered_file_is_the_champion_serving_loads_and_the_next_number_follows(tmp_path) -> None:
    artifact, reg = _model_file(tmp_path), tmp_path / "reg"
    cli = CliRunner()
    first = cli.invoke(app, ["models", "register", "credit-risk", str(artifact), "--registry-dir", str(reg)])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("registered credit-risk v1 as champion in ")
    registry = LocalModelRegistry(reg)
    mv = registry.champion("credit-risk")
    assert (mv.version, mv.sha256) == ("1", sha256_of(artifact))
    server = ModelServer("credit-risk", registry)
    prediction, _ = server.predict(np.array([[2.0, 0.0], [-2.0, 0.0]]))
    assert list(prediction) == [1, 0]
    again = cli.invoke(app, ["models", "register", "credit-risk", str(artifact), "--registry-dir", str(reg)])
    assert again.exit_code == 0 and registry.champion("credit-risk").version == "2"
    assert registry.get("credit-risk", "1").stage == "archived"
    pinned = ["models", "register", "credit-risk", str(artifact), "--version", "10"]
    assert cli.invoke(app, [*pinned, "--registry-dir", str(reg)]).exit_code == 0
    assert registry.champion("credit-risk").version == "10"


def test_a_registered_artifact_changed_on_disk_is_refused(tmp_path) -> None:
    registry = LocalModelRegistry(tmp_path / "reg")
    mv = registry.register_artifact("credit-risk", _model_file(tmp_path))
    stored = Path(mv.artifact_uri.removeprefix("file://"))
    stored.write_bytes(stored.read_bytes() + b"\0")
    with pytest.raises(RegistryError, match="does not match the SHA-256"):
        registry.load("credit-risk", "1")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--version", "1"], "give a whole number above 1"),
        (["--version", "v2"], "give a whole number above 1"),
    ],
)
def test_a_version_that_is_taken_or_not_a_number_is_refused(tmp_path, args, says) -> None:
    registry = LocalModelRegistry(tmp_path / "reg")
    registry.register_artifact("credit-risk", _model_file(tmp_path))
    with pytest.raises(RegistryError, match=says):
        registry.register_artifact("credit-risk", _model_file(tmp_path), version=args[1])
    assert [v.version for v in registry.versions("credit-risk")] == ["1"]


def test_a_file_that_is_not_a_model_fails_with_exit_2_and_nothing_registered(tmp_path) -> None:
    not_a_model = tmp_path / "weights.joblib"
    joblib.dump({"weights": [1, 2]}, not_a_model)
    driftline = Path(sys.executable).with_name("driftline")
    reg = tmp_path / "reg"
    cmd = [str(driftline), "models", "register", "credit-risk", str(not_a_model), "--registry-dir", str(reg)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "holds a dict, not a model with predict()" in done.stderr
    assert LocalModelRegistry(reg).versions("credit-risk") == []
