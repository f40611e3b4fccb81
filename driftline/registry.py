"""Model registries: versioned artifacts with their metrics and the data window they saw.

:class:`ModelRegistry` is the protocol every component is typed against (the retrain worker registers
and promotes, serving loads); :class:`LocalModelRegistry` is the embedded default.

The default store is a directory (one ``index.json`` per model plus joblib artifacts), written
atomically so a serving process can read it while the retrain worker writes. Serving loads an
artifact by the ``artifact_uri`` a :class:`~driftline.contracts.ModelUpdate` carries.

>>> import tempfile
>>> reg = LocalModelRegistry(tempfile.mkdtemp())
>>> v = reg.register("churn", {"weights": [1, 2]}, metrics={"accuracy": 0.9})
>>> v.version, reg.champion("churn").version
('1', '1')
>>> reg.load(v.artifact_uri)
{'weights': [1, 2]}
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import joblib

from driftline.errors import DriftlineError

__all__ = ["LocalModelRegistry", "ModelRegistry", "ModelVersion", "RegistryError"]


class RegistryError(DriftlineError):
    pass


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: str
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    trained_on: dict[str, Any] | None = None
    validated_on: dict[str, Any] | None = None
    triggered_by: str | None = None
    created_at: float = 0.0
    stage: str = "candidate"  # candidate | champion | archived | rejected


class ModelRegistry(Protocol):
    """What Driftline needs of a model registry: versions with lineage, a champion, artifacts."""

    def versions(self, model: str) -> list[ModelVersion]: ...

    def champion(self, model: str) -> ModelVersion: ...

    def get(self, model: str, version: str) -> ModelVersion: ...

    def find_triggered_by(self, model: str, trigger: str) -> ModelVersion | None: ...

    def load(self, artifact_uri: str) -> Any: ...

    def register(
        self,
        model: str,
        estimator: Any,
        *,
        metrics: dict[str, float] | None = None,
        trained_on: dict[str, Any] | None = None,
        validated_on: dict[str, Any] | None = None,
        triggered_by: str | None = None,
        promote: bool = True,
        stage: str = "candidate",
    ) -> ModelVersion: ...

    def promote(self, model: str, version: str) -> ModelVersion: ...


class LocalModelRegistry:
    """A directory: one ``index.json`` per model plus joblib artifacts, written atomically."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # -- reading -------------------------------------------------------------------------------
    def versions(self, model: str) -> list[ModelVersion]:
        path = self._index(model)
        if not path.exists():
            return []
        return [ModelVersion(**v) for v in json.loads(path.read_text())["versions"]]

    def champion(self, model: str) -> ModelVersion:
        for v in reversed(self.versions(model)):
            if v.stage == "champion":
                return v
        raise RegistryError(f"model {model!r} has no champion version in {self.root}; register one first")

    def get(self, model: str, version: str) -> ModelVersion:
        for v in self.versions(model):
            if v.version == version:
                return v
        known = [v.version for v in self.versions(model)]
        raise RegistryError(f"model {model!r} has no version {version!r}; known versions: {known}")

    def find_triggered_by(self, model: str, trigger: str) -> ModelVersion | None:
        return next((v for v in self.versions(model) if v.triggered_by == trigger), None)

    def load(self, artifact_uri: str) -> Any:
        path = Path(artifact_uri.removeprefix("file://"))
        if not path.exists():
            raise RegistryError(f"artifact {artifact_uri} does not exist (registry root {self.root})")
        return joblib.load(path)

    # -- writing -------------------------------------------------------------------------------
    def register(
        self,
        model: str,
        estimator: Any,
        *,
        metrics: dict[str, float] | None = None,
        trained_on: dict[str, Any] | None = None,
        validated_on: dict[str, Any] | None = None,
        triggered_by: str | None = None,
        promote: bool = True,
        stage: str = "candidate",
    ) -> ModelVersion:
        versions = self.versions(model)
        number = str(max((int(v.version) for v in versions), default=0) + 1)
        model_dir = self.root / model
        model_dir.mkdir(parents=True, exist_ok=True)
        artifact = model_dir / f"v{number}.joblib"
        tmp = artifact.with_suffix(".tmp")
        joblib.dump(estimator, tmp)
        os.replace(tmp, artifact)
        mv = ModelVersion(
            model=model,
            version=number,
            artifact_uri=f"file://{artifact.resolve()}",
            metrics=dict(metrics or {}),
            trained_on=trained_on,
            validated_on=validated_on,
            triggered_by=triggered_by,
            created_at=time.time(),
            stage=stage,
        )
        versions.append(mv)
        self._write(model, versions)
        return self.promote(model, number) if promote else mv

    def promote(self, model: str, version: str) -> ModelVersion:
        """Make ``version`` the champion; the previous champion is archived (rollback = promote it)."""
        versions = self.versions(model)
        if not any(v.version == version for v in versions):
            raise RegistryError(f"model {model!r} has no version {version!r}")
        out = []
        for v in versions:
            if v.version == version:
                v = ModelVersion(**{**asdict(v), "stage": "champion"})
            elif v.stage == "champion":
                v = ModelVersion(**{**asdict(v), "stage": "archived"})
            out.append(v)
        self._write(model, out)
        return self.get(model, version)

    def _index(self, model: str) -> Path:
        return self.root / model / "index.json"

    def _write(self, model: str, versions: list[ModelVersion]) -> None:
        path = self._index(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump({"model": model, "versions": [asdict(v) for v in versions]}, fh, indent=1)
        os.replace(tmp, path)
