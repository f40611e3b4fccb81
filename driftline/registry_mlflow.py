"""The model registry on MLflow: tracking runs + the model registry, so a person sees Driftline's
versions, their lineage and their metrics in the MLflow UI, and serving needs no shared disk.

A Driftline version is an MLflow model version of the registered model of the same name. Its stage,
digest, windows, metrics and lineage are version tags (``driftline.stage``,
``driftline.artifact_sha256``, ``driftline.triggered_by``, ``driftline.trained_on``,
``driftline.data_sha256``, ``driftline.trainer``, ``driftline.code_version``, ...); the champion is
the ``champion`` alias (other roles, e.g. ``challenger``, are aliases too). Each registration logs a
run (parameters, metrics, the joblib artifact under ``model/``), which the version points at.

Retrain outcomes are registered-model tags, one per request (``driftline.outcome.<digest of the
request id>``): durable in the tracking store, so a restarted worker reads them back; the first
decision stands.

Loading downloads the artifact through the tracking server (``mlflow server --serve-artifacts``:
serving needs only the URL) into ``artifact_cache_dir``, content-addressed by SHA-256, checks it
against the version's tag and the digest a model update announced, and reuses the cached file the
next time. A file whose digest does not match is refused and not kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

from driftline.registry import ModelVersion, RegistryError, check_artifact, check_name, sha256_of
from driftline.registry_lineage import estimator_params

__all__ = ["MlflowModelRegistry"]

P = "driftline."
_CORE = ("stage", "reason", "artifact_sha256", "size", "created_at", "triggered_by", "metrics")
_WINDOWS = ("trained_on", "validated_on")
ARTIFACT = "model/model.joblib"
OUTCOME = P + "outcome."


class MlflowModelRegistry:
    """:class:`~driftline.registry.ModelRegistry` on an MLflow tracking URI (``sqlite:///...`` or
    ``http://host:port``); artifacts cached by digest in ``artifact_cache_dir``."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        artifact_cache_dir: str | os.PathLike[str],
        experiment: str = "driftline",
    ) -> None:
        # no progress bars, and no run links printed on stdout (a `--json` command's output stays
        # JSON; the printing costs a request per run): the version's run id is in its tags
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.cache = Path(artifact_cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.experiment = experiment
        self._experiment_id: str | None = None
        self._models: set[str] = set()  # registered models known to exist: not created again

    # -- reading -------------------------------------------------------------------------------
    def versions(self, model: str) -> list[ModelVersion]:
        check_name("model name", model)
        found = self._call(lambda: self.client.search_model_versions(f"name='{model}'"))
        return sorted((self._version(mv) for mv in found), key=lambda v: int(v.version))

    def champion(self, model: str) -> ModelVersion:
        mv = self.alias(model, "champion")
        if mv is None:
            raise RegistryError(
                f"model {model!r} has no champion version in {self.tracking_uri}; register one first"
            )
        return mv

    def get(self, model: str, version: str) -> ModelVersion:
        check_name("model name", model)
        try:
            return self._version(self.client.get_model_version(model, version))
        except MlflowException:
            known = [v.version for v in self.versions(model)]
            raise RegistryError(
                f"model {model!r} has no version {version!r}; known versions: {known}"
            ) from None

    def find_triggered_by(self, model: str, trigger: str) -> ModelVersion | None:
        return next((v for v in self.versions(model) if v.triggered_by == trigger), None)

    def alias(self, model: str, alias: str) -> ModelVersion | None:
        check_name("model name", model)
        try:
            return self._version(self.client.get_model_version_by_alias(model, alias))
        except MlflowException as exc:
            if _missing(exc):
                return None
            raise RegistryError(f"MLflow at {self.tracking_uri}: {exc}") from None

    def load(self, model: str, version: str, *, sha256: str | None = None) -> Any:
        mv = self.get(model, version)
        if not mv.sha256:
            raise RegistryError(f"{model} v{version} has no recorded SHA-256: re-register it")
        if sha256 and sha256 != mv.sha256:
            raise RegistryError(
                f"artifact of {model} v{version}: the model update's SHA-256 ({sha256[:12]}...) is not "
                f"the registry's ({mv.sha256[:12]}...): refusing to load it"
            )
        cached = self.cache / f"{mv.sha256}.joblib"
        if not (cached.is_file() and sha256_of(cached) == mv.sha256):
            self._download(mv, cached)
        return joblib.load(cached)  # bytes whose digest the registry recorded (see README, Security)

    def _download(self, mv: ModelVersion, target: Path) -> None:
        run_id = mv.lineage.get("run_id", "")
        with tempfile.TemporaryDirectory(dir=self.cache, prefix=".download-") as tmp:
            try:
                path = Path(self.client.download_artifacts(run_id, ARTIFACT, tmp))
            except (MlflowException, OSError) as exc:
                raise RegistryError(
                    f"artifact of {mv.model} v{mv.version} could not be fetched: {exc}"
                ) from None
            check_artifact(path, mv)
            os.replace(path, target)

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
        check_name("model name", model)
        with tempfile.TemporaryDirectory(dir=self.cache, prefix=".register-") as tmp:
            path = Path(tmp) / "model.joblib"
            joblib.dump(estimator, path)
            tags = {
                "stage": stage,
                "metrics": json.dumps(metrics or {}, sort_keys=True),
                "trained_on": json.dumps(trained_on),
                "validated_on": json.dumps(validated_on),
                "triggered_by": triggered_by or "",
                **{str(k): str(v) for k, v in (lineage or {}).items()},
            }
            return self._register_file(model, path, tags, metrics or {}, estimator_params(estimator), promote)

    def register_artifact(
        self, model: str, artifact: str | os.PathLike[str], *, version: str | None = None
    ) -> ModelVersion:
        """Register a model file made elsewhere as the champion of ``model`` (MLflow numbers
        versions itself: ``version``, when given, must be the next number)."""
        source = Path(artifact)
        if not source.is_file():
            raise RegistryError(f"artifact {str(source)!r} is not a file")
        top = max((int(v.version) for v in self.versions(model)), default=0)
        if version is not None and (not version.isdigit() or int(version) != top + 1):
            raise RegistryError(
                f"version {version!r} of {model!r}: MLflow numbers versions itself; the next one is "
                f"{top + 1} (leave --version out)"
            )
        tags = {"stage": "candidate", "triggered_by": f"registered: {source.name}"}
        return self._register_file(model, source, tags, {}, {}, True)

    def _register_file(
        self,
        model: str,
        path: Path,
        tags: dict[str, str],
        metrics: Mapping[str, float],
        params: Mapping[str, str],
        promote: bool,
    ) -> ModelVersion:
        """Log a run holding ``path`` (its params, metrics, tags), then a model version pointing at it."""
        digest = sha256_of(path)
        tags = {
            **tags,
            "artifact_sha256": digest,
            "size": str(path.stat().st_size),
            "created_at": repr(time.time()),
        }
        self._ensure_model(model)
        run = self._call(
            lambda: self.client.create_run(  # the tags on the run too: the UI's run table filters on them
                self._experiment(),
                run_name=f"{model} {tags['triggered_by'] or 'registered'}",
                tags={P + k: v[:8000] for k, v in tags.items()},
            )
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        self._call(
            lambda: self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if math.isfinite(float(v))],
                params=[Param(k, v) for k, v in params.items()],
            )
        )
        self._call(lambda: self.client.log_artifact(run_id, str(path), "model"))
        self._call(lambda: self.client.set_terminated(run_id))
        self._cache_copy(path, digest)
        mv = self._call(
            lambda: self.client.create_model_version(
                model,
                f"{run.info.artifact_uri}/model",
                run_id=run_id,
                tags={P + k: v for k, v in {**tags, "run_id": run_id}.items()},
                await_creation_for=0,
            )
        )
        return self._promote(self._version(mv)) if promote else self._version(mv)

    def promote(self, model: str, version: str) -> ModelVersion:
        """Make ``version`` the champion (alias and stage); the previous champion is archived."""
        return self._promote(self.get(model, version))

    def _promote(self, mv: ModelVersion) -> ModelVersion:
        previous = self.alias(mv.model, "champion")
        if previous is not None and previous.version != mv.version:
            self._tag(mv.model, previous.version, "stage", "archived")
        self._tag(mv.model, mv.version, "stage", "champion")
        self._call(lambda: self.client.set_registered_model_alias(mv.model, "champion", mv.version))
        return replace(mv, stage="champion")

    def set_stage(self, model: str, version: str, stage: str, *, reason: str = "") -> ModelVersion:
        if stage == "champion":
            raise RegistryError("make a version the champion with promote(), which archives the previous one")
        self.get(model, version)
        self._tag(model, version, "stage", stage)
        self._tag(model, version, "reason", reason)
        return self.get(model, version)

    def set_alias(self, model: str, alias: str, version: str | None) -> None:
        check_name("alias", alias)
        if version is None:
            try:
                self.client.delete_registered_model_alias(model, alias)
            except MlflowException as exc:
                if not _missing(exc):
                    raise RegistryError(f"MLflow at {self.tracking_uri}: {exc}") from None
            return
        self.get(model, version)
        self._call(lambda: self.client.set_registered_model_alias(model, alias, version))

    # -- retrain outcomes ----------------------------------------------------------------------
    def outcomes(self, model: str) -> dict[str, dict[str, Any]]:
        check_name("model name", model)
        try:
            tags = self.client.get_registered_model(model).tags
        except MlflowException as exc:
            if _missing(exc):
                return {}
            raise RegistryError(f"MLflow at {self.tracking_uri}: {exc}") from None
        found = (json.loads(v) for k, v in tags.items() if k.startswith(OUTCOME))
        return {o["request_id"]: o["outcome"] for o in found}

    def record_outcome(self, model: str, request_id: str, outcome: Mapping[str, Any]) -> bool:
        """One registered-model tag per request; a request already recorded keeps its first outcome."""
        if request_id in self.outcomes(model):
            return False
        self._ensure_model(model)
        key = OUTCOME + hashlib.sha256(request_id.encode()).hexdigest()[:32]
        value = json.dumps({"request_id": request_id, "outcome": dict(outcome)}, sort_keys=True)
        self._call(lambda: self.client.set_registered_model_tag(model, key, value))
        return True

    # -- helpers -------------------------------------------------------------------------------
    def _version(self, mv: Any) -> ModelVersion:
        tags: dict[str, str] = {k[len(P) :]: v for k, v in mv.tags.items() if k.startswith(P)}
        created = tags.get("created_at")
        return ModelVersion(
            model=mv.name,
            version=str(mv.version),
            artifact_uri=f"models:/{mv.name}/{mv.version}",
            metrics={k: float(v) for k, v in json.loads(tags.get("metrics") or "{}").items()},
            trained_on=json.loads(tags.get("trained_on") or "null"),
            validated_on=json.loads(tags.get("validated_on") or "null"),
            triggered_by=tags.get("triggered_by") or None,
            created_at=float(created) if created else mv.creation_timestamp / 1000.0,
            stage=tags.get("stage", "candidate"),
            sha256=tags.get("artifact_sha256", ""),
            size=int(tags.get("size") or 0),
            lineage={k: v for k, v in tags.items() if k not in _CORE and k not in _WINDOWS},
            reason=tags.get("reason", ""),
        )

    def _tag(self, model: str, version: str, key: str, value: str) -> None:
        self._call(lambda: self.client.set_model_version_tag(model, version, P + key, value))

    def _ensure_model(self, model: str) -> None:
        if model in self._models:
            return
        try:
            self.client.create_registered_model(model, description="registered by Driftline")
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise RegistryError(f"MLflow at {self.tracking_uri}: {exc}") from None
        self._models.add(model)

    def _experiment(self) -> str:
        """The experiment runs are logged in; on a sqlite store its artifacts sit beside the
        database (not in the working directory's ./mlruns)."""
        if self._experiment_id is None:
            found = self._call(lambda: self.client.get_experiment_by_name(self.experiment))
            if found is not None:
                self._experiment_id = str(found.experiment_id)
            else:
                location = None
                if self.tracking_uri.startswith("sqlite:///"):
                    db = Path(self.tracking_uri.removeprefix("sqlite:///"))
                    location = (db.parent / "mlflow-artifacts").resolve().as_uri()
                self._experiment_id = self._call(
                    lambda: self.client.create_experiment(self.experiment, artifact_location=location)
                )
        return self._experiment_id

    def _cache_copy(self, path: Path, digest: str) -> None:
        """The registering process keeps the bytes it just logged, so it never downloads them."""
        target = self.cache / f"{digest}.joblib"
        if not target.is_file():
            fd, tmp = tempfile.mkstemp(dir=self.cache, suffix=".tmp")
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                out.write(src.read())
            os.replace(tmp, target)

    def _call(self, fn: Any) -> Any:
        """``fn()``, with an MLflow failure as a RegistryError naming the tracking URI."""
        try:
            return fn()
        except MlflowException as exc:
            raise RegistryError(f"MLflow at {self.tracking_uri}: {exc}") from None


def _missing(exc: MlflowException) -> bool:
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")
