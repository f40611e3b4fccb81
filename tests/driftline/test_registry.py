"""The model registry's contract, on both backends (the local directory and MLflow on sqlite):
artifacts load by (model, version) only when their SHA-256 matches; names cannot traverse; lineage,
stages and aliases are recorded; retrain outcomes survive a new registry object, first decision
standing. Local-only: the index cannot point outside the root."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from driftline.config import DriftlineSettings, RetrainSettings
from driftline.registry import LocalModelRegistry, ModelRegistry, RegistryError, check_name, open_registry

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
BACKENDS = [
    "local",
    pytest.param(
        "mlflow",
        marks=pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow not installed (the dev extra has it)"),
    ),
]


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite store with its tables made once (creating them takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow-template")
    open_registry(RetrainSettings(registry="mlflow"), root).versions("churn")
    return root / "mlflow.db"


@pytest.fixture(params=BACKENDS)
def open_reg(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ModelRegistry]:
    """Opens the registry at one place (a second call: a new object on the same store)."""
    root = tmp_path / "registry"
    settings = RetrainSettings(registry=request.param)
    if request.param == "mlflow":
        root.mkdir()
        shutil.copy(request.getfixturevalue("mlflow_template"), root / "mlflow.db")
    return lambda: open_registry(settings, root)


@pytest.fixture
def registry(open_reg: Callable[[], ModelRegistry]) -> ModelRegistry:
    reg = open_reg()
    reg.register("churn", {"weights": [1, 2]}, lineage={"data_sha256": "ab" * 32, "trainer": "refit_clone"})
    return reg


def _stored_artifacts(registry: Any) -> list[Path]:
    """Every stored copy of the registry's artifacts (for the MLflow one: the store and the cache)."""
    if isinstance(registry, LocalModelRegistry):
        return [Path(registry.champion("churn").artifact_uri.removeprefix("file://"))]
    return [*registry.cache.parent.glob("mlflow-artifacts/**/model.joblib"), *registry.cache.glob("*.joblib")]


def test_registration_records_digest_size_and_lineage(registry: ModelRegistry) -> None:
    mv = registry.champion("churn")
    assert len(mv.sha256) == 64 and mv.size > 0
    assert mv.lineage["data_sha256"] == "ab" * 32 and mv.lineage["trainer"] == "refit_clone"
    assert registry.load("churn", "1", sha256=mv.sha256) == {"weights": [1, 2]}


def test_tampered_artifact_is_refused(registry: ModelRegistry) -> None:
    for path in _stored_artifacts(registry):
        path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(RegistryError, match="does not match the SHA-256"):
        registry.load("churn", "1")


def test_digest_announced_by_an_update_must_match(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="model update"):
        registry.load("churn", "1", sha256="0" * 64)


def test_unknown_version_is_refused(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="no version '7'"):
        registry.load("churn", "7")


def test_promotion_archives_the_champion_and_stages_record_why(registry: ModelRegistry) -> None:
    registry.register("churn", {"weights": [3]}, promote=False, stage="rejected")
    registry.register("churn", {"weights": [4]})
    assert [v.stage for v in registry.versions("churn")] == ["archived", "rejected", "champion"]
    assert registry.find_triggered_by("churn", "nobody") is None
    bad = registry.set_stage("churn", "3", "rolled_back", reason="accuracy 0.61 < 0.90 live")
    assert (bad.stage, bad.reason) == ("rolled_back", "accuracy 0.61 < 0.90 live")
    assert registry.promote("churn", "1").stage == "champion"
    assert registry.load("churn", registry.champion("churn").version) == {"weights": [1, 2]}
    with pytest.raises(RegistryError, match="promote"):
        registry.set_stage("churn", "2", "champion")


def test_aliases_name_a_version_until_removed(registry: ModelRegistry) -> None:
    assert registry.alias("churn", "challenger") is None
    registry.register("churn", {"weights": [5]}, promote=False)
    registry.set_alias("churn", "challenger", "2")
    alias = registry.alias("churn", "challenger")
    assert alias is not None and alias.version == "2" and registry.champion("churn").version == "1"
    registry.set_alias("churn", "challenger", None)
    assert registry.alias("churn", "challenger") is None


def test_outcomes_survive_a_new_registry_object_and_the_first_stands(
    open_reg: Callable[[], ModelRegistry],
) -> None:
    first = open_reg()
    assert first.outcomes("churn") == {}
    assert first.record_outcome("churn", "drift:churn:1/7", {"status": "promoted", "version": "2"})
    again = open_reg()  # a restarted worker
    assert not again.record_outcome("churn", "drift:churn:1/7", {"status": "failed"})
    assert again.outcomes("churn") == {"drift:churn:1/7": {"status": "promoted", "version": "2"}}


def test_a_model_file_made_elsewhere_becomes_the_champion(registry: ModelRegistry, tmp_path: Path) -> None:
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump({"weights": [9]}, path)
    reg: Any = registry  # register_artifact: both backends, not the protocol (driftline models register)
    with pytest.raises(RegistryError, match="version '1' of 'churn'"):  # taken already
        reg.register_artifact("churn", path, version="1")
    mv = reg.register_artifact("churn", path)
    assert (mv.version, mv.stage, mv.triggered_by) == ("2", "champion", "registered: model.joblib")
    assert registry.load("churn", "2", sha256=mv.sha256) == {"weights": [9]}


@pytest.mark.parametrize("name", ["../escaped", "..", "a/b", "/abs", "", "x" * 129, ".hidden", "a\x00b"])
def test_traversal_names_never_reach_a_path(open_reg: Callable[[], ModelRegistry], name: str) -> None:
    reg = open_reg()
    with pytest.raises(RegistryError, match="not a safe name"):
        reg.register(name, {})
    with pytest.raises(RegistryError, match="not a safe name"):
        reg.versions(name)


def test_traversal_names_write_nothing_beside_the_root(tmp_path: Path) -> None:
    reg = LocalModelRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="not a safe name"):
        reg.register("../escaped", {})
    assert [p.name for p in tmp_path.iterdir()] == ["registry"]


def test_artifact_outside_the_root_is_never_loaded(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path / "registry")
    registry.register("churn", {"weights": [1, 2]})
    outside = tmp_path / "evil.joblib"
    outside.write_bytes(b"not a model")
    index = registry.root / "churn" / "index.json"
    data = json.loads(index.read_text())
    data["versions"][0]["artifact_uri"] = f"file://{outside}"
    index.write_text(json.dumps(data))
    with pytest.raises(RegistryError, match="outside the registry root"):
        registry.load("churn", "1")


def test_safe_names_pass() -> None:
    assert check_name("model name", "credit-risk_v2.1") == "credit-risk_v2.1"


def test_mlflow_missing_fails_at_start_up_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "driftline.registry_mlflow", None)  # as if mlflow were not installed
    with pytest.raises(RegistryError, match=r"pip install 'driftline\[mlflow\]'"):
        open_registry(RetrainSettings(registry="mlflow"), tmp_path)


def test_an_unknown_backend_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="retrain.registry: Input should be 'local' or 'mlflow'"):
        DriftlineSettings(retrain={"registry": "s3"})
