"""Model registries: versioned artifacts with their metrics and the data window they saw.

:class:`ModelRegistry` is the protocol every component is typed against (the retrain worker registers
and promotes, serving loads); :class:`LocalModelRegistry` is the embedded default.

The default store is a directory (one ``index.json`` per model plus joblib artifacts), written
atomically so a serving process can read it while the retrain worker writes.

>>> import tempfile
>>> reg = LocalModelRegistry(tempfile.mkdtemp())
>>> v = reg.register("churn", {"weights": [1, 2]}, metrics={"accuracy": 0.9})
>>> v.version, reg.champion("churn").version
('1', '1')
>>> reg.load("churn", "1")
{'weights': [1, 2]}
>>> import joblib, os
>>> path = os.path.join(tempfile.mkdtemp(), "model.joblib"); _ = joblib.dump({"weights": [3]}, path)
>>> reg.register_artifact("churn", path).version, reg.load("churn", "2")  # a file made elsewhere
('2', {'weights': [3]})
>>> reg.register("../escaped", {})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.registry.RegistryError: model name '../escaped' is not a safe name: ...

Beside the index, ``outcomes.json`` records each retrain request's decision (the first stands), so a
restarted retrain worker skips what it decided. :func:`open_registry` builds the backend the settings
name (``retrain.registry``: ``local`` or ``mlflow``, :mod:`driftline.registry_mlflow`).

A version carries its lineage (``lineage``: the training data's digest, the trainer, its parameters,
the code version -- :mod:`driftline.registry_lineage`) beside its windows and metrics, and a stage
(``candidate``, ``champion``, ``archived``, ``rejected``, or what :meth:`set_stage` records, e.g.
``rolled_back``, with its reason). Aliases name a version for a role (``challenger``).

Artifacts are loaded by (model, version), never by a path from a message: the path comes from the
registry's own index, must resolve inside the registry root, and the file's SHA-256 must match the
one recorded at registration and any a model update announced (:func:`check_artifact`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import joblib

from driftline.contracts import is_safe_name
from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from driftline.config import RetrainSettings

__all__ = [
    "LocalModelRegistry",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "check_artifact",
    "check_name",
    "open_registry",
]


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
    sha256: str = ""  # of the artifact's bytes, recorded at registration
    size: int = 0
    lineage: dict[str, str] = field(default_factory=dict)  # data digest, trainer, params, code version
    reason: str = ""  # why the version is in its stage, when something decided it (set_stage)


def check_name(kind: str, value: str) -> str:
    """``value`` if it is safe as one path component (and a Kafka key, a metric label); else raise."""
    if not is_safe_name(value):
        raise RegistryError(
            f"{kind} {value!r} is not a safe name: 1-128 of A-Z a-z 0-9 . _ - not starting with . or -, "
            "no '..'"
        )
    return value


def check_artifact(path: Path, mv: ModelVersion, announced: str | None = None) -> None:
    """Refuse ``path`` unless its SHA-256 is the one recorded for ``mv`` (and ``announced``, the one a
    model update carried, when given): every backend's check before an artifact is loaded."""
    if not mv.sha256:
        raise RegistryError(f"{mv.model} v{mv.version} has no recorded SHA-256: re-register it")
    digest = sha256_of(path)
    for source, expected in (("the registry", mv.sha256), ("the model update", announced)):
        if expected and digest != expected:
            raise RegistryError(
                f"artifact of {mv.model} v{mv.version} does not match the SHA-256 in {source} "
                f"({digest[:12]}... != {expected[:12]}...): refusing to load it"
            )


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class ModelRegistry(Protocol):
    """What Driftline needs of a model registry: versions with lineage, a champion, artifacts."""

    def versions(self, model: str) -> list[ModelVersion]: ...

    def champion(self, model: str) -> ModelVersion: ...

    def get(self, model: str, version: str) -> ModelVersion: ...

    def find_triggered_by(self, model: str, trigger: str) -> ModelVersion | None: ...

    def load(self, model: str, version: str, *, sha256: str | None = None) -> Any:
        """The artifact of ``model`` ``version``, verified; ``sha256``: the digest a message announced."""
        ...

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
        lineage: Mapping[str, str] | None = None,
    ) -> ModelVersion: ...

    def promote(self, model: str, version: str) -> ModelVersion: ...

    def set_stage(self, model: str, version: str, stage: str, *, reason: str = "") -> ModelVersion:
        """Record ``version``'s stage and why (e.g. ``rolled_back``); the champion is moved by
        :meth:`promote` only."""
        ...

    def set_alias(self, model: str, alias: str, version: str | None) -> None:
        """Point ``alias`` (e.g. ``challenger``) at ``version``; None removes it."""
        ...

    def alias(self, model: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, None if it points nowhere."""
        ...

    def outcomes(self, model: str) -> dict[str, dict[str, Any]]:
        """The recorded outcome of each retrain request about ``model``, by request id."""
        ...

    def record_outcome(self, model: str, request_id: str, outcome: Mapping[str, Any]) -> bool:
        """Record what became of ``request_id`` durably unless it is recorded already (the first
        decision stands); True if this call recorded it."""
        ...


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

    def load(self, model: str, version: str, *, sha256: str | None = None) -> Any:
        mv = self.get(model, version)
        path = Path(mv.artifact_uri.removeprefix("file://")).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise RegistryError(f"artifact of {model} v{version} is outside the registry root {self.root}")
        if not path.is_file():
            raise RegistryError(f"artifact of {model} v{version} is missing ({path})")
        check_artifact(path, mv, sha256)
        return joblib.load(path)  # verified bytes written by this registry (see README, Security)

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
        lineage: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        versions = self.versions(model)
        number = str(max((int(v.version) for v in versions), default=0) + 1)
        model_dir = self.root / check_name("model name", model)
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
            sha256=sha256_of(artifact),
            size=artifact.stat().st_size,
            lineage={str(k): str(v) for k, v in (lineage or {}).items()},
        )
        versions.append(mv)
        self._write(model, versions)
        return self.promote(model, number) if promote else mv

    def register_artifact(
        self, model: str, artifact: str | os.PathLike[str], *, version: str | None = None
    ) -> ModelVersion:
        """Register a model file made elsewhere (joblib or pickle) as the champion of ``model``.

        The file is copied into the registry and its SHA-256 recorded; from then on it is loaded only
        through :meth:`load`, which checks that digest. Loading it runs code (a pickle can do
        anything): register only artifacts you trust. ``version``: a number above every existing
        version (default: the next one), since versions are numbered."""
        source = Path(artifact)
        if not source.is_file():
            raise RegistryError(f"artifact {str(source)!r} is not a file")
        versions = self.versions(model)
        top = max((int(v.version) for v in versions), default=0)
        number = str(top + 1) if version is None else version
        if not number.isdigit() or int(number) <= top:
            raise RegistryError(
                f"version {number!r} of {model!r}: give a whole number above {top} (the newest registered), "
                "or leave it out for the next one"
            )
        model_dir = self.root / check_name("model name", model)
        model_dir.mkdir(parents=True, exist_ok=True)
        target = model_dir / f"v{int(number)}.joblib"
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        mv = ModelVersion(
            model=model,
            version=str(int(number)),
            artifact_uri=f"file://{target.resolve()}",
            triggered_by=f"registered: {source.name}",
            created_at=time.time(),
            sha256=sha256_of(target),
            size=target.stat().st_size,
        )
        self._write(model, [*versions, mv])
        return self.promote(model, mv.version)

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

    def set_stage(self, model: str, version: str, stage: str, *, reason: str = "") -> ModelVersion:
        if stage == "champion":
            raise RegistryError("make a version the champion with promote(), which archives the previous one")
        self.get(model, version)  # names the known versions if it is not one
        out = [
            ModelVersion(**{**asdict(v), "stage": stage, "reason": reason}) if v.version == version else v
            for v in self.versions(model)
        ]
        self._write(model, out)
        return self.get(model, version)

    def set_alias(self, model: str, alias: str, version: str | None) -> None:
        check_name("alias", alias)
        if version is not None:
            self.get(model, version)
        aliases = {k: v for k, v in self._aliases(model).items() if k != alias}
        if version is not None:
            aliases[alias] = version
        self._write(model, self.versions(model), aliases)

    def alias(self, model: str, alias: str) -> ModelVersion | None:
        version = self._aliases(model).get(alias)
        return None if version is None else self.get(model, version)

    def _aliases(self, model: str) -> dict[str, str]:
        path = self._index(model)
        return dict(json.loads(path.read_text()).get("aliases", {})) if path.exists() else {}

    # -- retrain outcomes ----------------------------------------------------------------------
    def outcomes(self, model: str) -> dict[str, dict[str, Any]]:
        path = self._index(model).with_name("outcomes.json")
        return dict(json.loads(path.read_text())["outcomes"]) if path.exists() else {}

    def record_outcome(self, model: str, request_id: str, outcome: Mapping[str, Any]) -> bool:
        """Written like the index (a whole new file, then an atomic rename): a reader or a kill
        mid-write sees the old log or the new one, never half of one."""
        known = self.outcomes(model)
        if request_id in known:
            return False
        known[request_id] = dict(outcome)
        _write_json(self._index(model).with_name("outcomes.json"), {"model": model, "outcomes": known})
        return True

    def _index(self, model: str) -> Path:
        return self.root / check_name("model name", model) / "index.json"

    def _write(
        self, model: str, versions: list[ModelVersion], aliases: Mapping[str, str] | None = None
    ) -> None:
        content: dict[str, Any] = {"model": model, "versions": [asdict(v) for v in versions]}
        aliases = self._aliases(model) if aliases is None else aliases
        if aliases:
            content["aliases"] = dict(aliases)
        _write_json(self._index(model), content)


def open_registry(
    settings: RetrainSettings, registry_dir: str | os.PathLike[str] | None = None
) -> ModelRegistry:
    """The registry ``settings.registry`` names, rooted at ``registry_dir`` (default
    ``settings.registry_dir``). ``mlflow`` is imported only when chosen, so the embedded default never
    loads it; without it installed this fails at start-up saying what to install.

    >>> import tempfile
    >>> from driftline.config import RetrainSettings
    >>> type(open_registry(RetrainSettings(), tempfile.mkdtemp())).__name__
    'LocalModelRegistry'
    """
    root = Path(registry_dir if registry_dir is not None else settings.registry_dir)
    if settings.registry == "local":
        return LocalModelRegistry(root)
    try:
        from driftline.registry_mlflow import MlflowModelRegistry
    except ImportError as exc:
        raise RegistryError(
            f"retrain.registry=mlflow needs MLflow ({exc}): pip install 'driftline[mlflow]'"
        ) from None
    root.mkdir(parents=True, exist_ok=True)
    uri = settings.mlflow_tracking_uri or f"sqlite:///{root.resolve() / 'mlflow.db'}"
    cache = settings.artifact_cache_dir or str(root / "artifact-cache")
    return MlflowModelRegistry(uri, artifact_cache_dir=cache)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``content``, flushed to disk before the rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(content, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
