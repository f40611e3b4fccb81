"""The model registry's trust boundary: artifacts load by (model, version) from the registry's own
index, only from inside its root, and only when their SHA-256 matches; names cannot traverse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftline.registry import LocalModelRegistry, RegistryError, check_name


@pytest.fixture
def registry(tmp_path: Path) -> LocalModelRegistry:
    reg = LocalModelRegistry(tmp_path / "registry")
    reg.register("churn", {"weights": [1, 2]})
    return reg


def test_registration_records_digest_and_size(registry: LocalModelRegistry) -> None:
    mv = registry.champion("churn")
    assert len(mv.sha256) == 64 and mv.size > 0
    assert registry.load("churn", "1", sha256=mv.sha256) == {"weights": [1, 2]}


def test_tampered_artifact_is_refused(registry: LocalModelRegistry) -> None:
    path = Path(registry.champion("churn").artifact_uri.removeprefix("file://"))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(RegistryError, match="does not match the SHA-256"):
        registry.load("churn", "1")


def test_digest_announced_by_an_update_must_match(registry: LocalModelRegistry) -> None:
    with pytest.raises(RegistryError, match="model update"):
        registry.load("churn", "1", sha256="0" * 64)


def test_artifact_outside_the_root_is_never_loaded(registry: LocalModelRegistry, tmp_path: Path) -> None:
    outside = tmp_path / "evil.joblib"
    outside.write_bytes(b"not a model")
    index = registry.root / "churn" / "index.json"
    data = json.loads(index.read_text())
    data["versions"][0]["artifact_uri"] = f"file://{outside}"
    index.write_text(json.dumps(data))
    with pytest.raises(RegistryError, match="outside the registry root"):
        registry.load("churn", "1")


def test_unknown_version_is_refused(registry: LocalModelRegistry) -> None:
    with pytest.raises(RegistryError, match="no version '7'"):
        registry.load("churn", "7")


@pytest.mark.parametrize("name", ["../escaped", "..", "a/b", "/abs", "", "x" * 129, ".hidden", "a\x00b"])
def test_traversal_names_never_reach_a_path(tmp_path: Path, name: str) -> None:
    reg = LocalModelRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="not a safe name"):
        reg.register(name, {})
    with pytest.raises(RegistryError, match="not a safe name"):
        reg.versions(name)
    assert [p.name for p in tmp_path.iterdir()] == ["registry"]  # nothing written beside the root


def test_safe_names_pass() -> None:
    assert check_name("model name", "credit-risk_v2.1") == "credit-risk_v2.1"
