"""Serving applies a model update only for a registered version whose artifact verifies; anything
else (unknown version, tampered bytes, a digest that disagrees) is refused and the current version
keeps serving."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from driftline.contracts import ModelUpdate
from driftline.registry import LocalModelRegistry
from producers.serving import ModelServer


def _model(flip: bool) -> LogisticRegression:
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    y = [1, 1, 0, 0] if flip else [0, 0, 1, 1]
    return LogisticRegression().fit(X, y)


@pytest.fixture
def served(tmp_path: Path) -> tuple[LocalModelRegistry, ModelServer]:
    reg = LocalModelRegistry(tmp_path / "registry")
    reg.register("churn", _model(flip=False))
    reg.register("churn", _model(flip=True), promote=False)
    return reg, ModelServer("churn", reg)


def update(version: str, sha256: str = "", uri: str = "file:///etc/passwd") -> ModelUpdate:
    return ModelUpdate(
        model="churn", version=version, previous_version="1", artifact_uri=uri, artifact_sha256=sha256
    )


def test_a_verified_update_is_applied(served) -> None:
    reg, server = served
    assert server.apply(update("2", reg.get("churn", "2").sha256))
    assert server.version == "2" and server.refused == 0
    assert server.predict(pd.DataFrame({"x": [3.0]}))[0].tolist() == [0]  # the flipped model serves


def test_an_unregistered_version_or_foreign_path_is_refused(served) -> None:
    _, server = served
    assert not server.apply(update("9"))  # the uri names a file outside the registry: never read
    assert server.version == "1" and server.refused == 1


def test_a_tampered_artifact_is_refused_and_the_current_version_keeps_serving(served) -> None:
    reg, server = served
    path = Path(reg.get("churn", "2").artifact_uri.removeprefix("file://"))
    path.write_bytes(path.read_bytes()[:-8] + b"tampered")
    assert not server.apply(update("2"))
    assert not server.apply(update("2", "f" * 64))
    assert server.version == "1" and server.refused == 2
    assert server.predict(pd.DataFrame({"x": [3.0]}))[0].tolist() == [1]
