"""The monitor spec: what each model is, declared once -- its task, its features and their types,
its reference data, its segments, its thresholds, its routing and its retraining recipe.

A spec is the ``models:`` block of a YAML file read by :meth:`driftline.config.DriftlineSettings.load`
(``driftline --config FILE`` or ``DRIFTLINE_CONFIG``); the same file may also hold every other settings
section (``monitor:``, ``routing:``, ``kafka:``...), which ``DRIFTLINE_*`` variables override. Every
key is validated at start-up: an unknown key, a wrong type or a bad value fails naming its path
(``models.credit-risk.features.income``) and what would be valid.

Features are declared, never guessed: a declared numeric feature whose first value is missing is
still numeric; a feature sent but not declared is reported once and not monitored; ``ignore`` says a
field is known and deliberately not monitored (an id).

>>> spec = ModelSpec(task="binary", features={"income": "numeric", "region": "categorical",
...                  "customer_id": "ignore"}, segments=["region"], reference={"first": 2000})
>>> spec.kinds(), sorted(spec.ignored())
({'income': 'numeric', 'region': 'categorical'}, ['customer_id'])
>>> spec.monitor_overrides()
{'task': 'binary', 'reference_size': 2000}
>>> ModelSpec(features={"income": "numerc"})
Traceback (most recent call last):
...
driftline.errors.ConfigError: features.income.type: Input should be 'numeric', 'categorical' or ...
>>> ModelSpec(features={"x": "numeric"}, segments=["channel"])
Traceback (most recent call last):
...
driftline.errors.ConfigError: segments: 'channel' is not a declared feature: declare it under ...
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from driftline.settings_base import Section

__all__ = [
    "Columns",
    "FeatureSpec",
    "FeatureType",
    "LabelSpec",
    "ModelRouting",
    "ModelSpec",
    "Promotion",
    "Reference",
    "RetrainRecipe",
    "Rollback",
    "TaskName",
]

FeatureType = Literal["numeric", "categorical", "ignore"]
TaskName = Literal["binary", "multiclass", "regression"]
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class FeatureSpec(Section):
    """A feature with settings of its own (``income: {type: numeric, false_alarms_per_100k: 0.02}``)."""

    type: FeatureType
    false_alarms_per_100k: float | None = Field(
        default=None,
        gt=0,
        description="this feature's own false-alarm budget (taken out of the model's before the rest is "
        "split across its other streams)",
    )


def _typed(value: Any) -> Any:
    """``income: numeric`` is short for ``income: {type: numeric}``."""
    return {"type": value} if isinstance(value, str) else value


class Reference(Section):
    """What a version's drift is measured against: exactly one of a file, its first N predictions, or
    another version's reference (``{version: "1"}``: every version compared with version 1's data)."""

    path: str | None = Field(
        default=None, description="parquet, CSV or JSON-lines file of the declared features"
    )
    first: int | None = Field(default=None, ge=100, description="the version's first N predictions")
    version: str | None = Field(default=None, min_length=1, description="a pinned version's reference")

    @model_validator(mode="after")
    def _exactly_one(self) -> Reference:
        given = [k for k in ("path", "first", "version") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of path (a parquet/CSV/JSON-lines file), first (N predictions) "
                f"or version (a pinned version), got {given or 'none'}"
            )
        if self.path is not None and not Path(self.path).is_file():
            raise ValueError(
                f"reference file {self.path!r} does not exist (a relative path is read "
                "from the spec file's folder)"
            )
        return self


class LabelSpec(Section):
    """How labels read: the positive class of a binary model (labels and predictions equal to it are
    positives; scores are its probability)."""

    positive_class: str | int | bool = 1


class Columns(Section):
    """Column names of a file replayed or backfilled (``driftline replay``); defaults shown."""

    prediction_id: str = "prediction_id"
    event_time: str = Field(default="event_time", description="epoch seconds or ISO 8601")
    prediction: str = "prediction"
    score: str = "score"
    probabilities: dict[str, str] | None = Field(
        default=None, description="multiclass: class -> the column holding its probability"
    )
    label: str = "label"
    model: str = "model"
    model_version: str = "model_version"


class Promotion(Section):
    """When a retrained challenger replaces the champion."""

    min_improvement: float | None = Field(default=None, ge=0, description="by at least this much")
    holdout_fraction: float | None = Field(default=None, gt=0, lt=0.9)
    confidence: float | None = Field(
        default=None, ge=0.5, lt=1.0, description="and the one-sided bound of the difference clears zero"
    )
    shadow_labelled: int | None = Field(
        default=None, ge=0, description="labelled shadow predictions before promotion (0: no shadow)"
    )


class Rollback(Section):
    """When a promoted version that regresses live is replaced by the champion it replaced."""

    enabled: bool | None = None
    min_labelled: int | None = Field(
        default=None, ge=20, description="labelled events of the new version before it may be rolled back"
    )


class RetrainRecipe(Section):
    """How to refit the model: ``trainer`` is called with the window's declared features (a pandas
    DataFrame) and labels (a Series) and returns a fitted model."""

    trainer: str | None = Field(default=None, description="package.module:function")
    trainer_path: str | None = Field(
        default=None,
        description="folder appended to sys.path (lowest priority) before the trainer is imported; "
        "default: the spec file's folder, so a train.py beside the spec is 'train:fit'",
    )
    train_window: int | None = Field(default=None, ge=100)
    min_samples: int | None = Field(default=None, ge=50)
    cooldown_s: float | None = Field(default=None, ge=0)
    promotion: Promotion = Promotion()
    rollback: Rollback = Rollback()

    @field_validator("trainer")
    @classmethod
    def _callable_path(cls, v: str | None) -> str | None:
        if v is not None and not _CALLABLE.match(v):
            raise ValueError("write it as package.module:function, e.g. mypackage.train:fit")
        return v


class ModelRouting(Section):
    """Where this model's notifications go, instead of ``routing.sinks`` (names of sinks configured
    in ``routing:``), and its runbook link template (``{model}``, ``{version}``, ``{kind}``)."""

    sinks: tuple[str, ...] | None = None
    runbook: str | None = None


class ModelSpec(Section):
    """One model, as the events name it. See the module docstring."""

    task: TaskName = "binary"
    features: dict[str, Annotated[FeatureSpec, BeforeValidator(_typed)]] = Field(min_length=1)
    reference: Reference | None = Field(default=None, description="default: the first monitor.reference_size")
    segments: list[str] = Field(default=[], max_length=4)
    max_segment_values: int = Field(
        default=16,
        ge=2,
        le=256,
        description="distinct values tracked per segment column; later ones are pooled as 'other'",
    )
    false_alarms_per_100k: float | None = Field(default=None, gt=0)
    performance_drop: float | None = Field(default=None, gt=0)
    window_size: int | None = Field(default=None, ge=50)
    performance_window: int | None = Field(default=None, ge=50)
    metrics_every: int | None = Field(default=None, ge=1)
    label_lateness_s: float | None = Field(default=None, gt=0)
    error_detector: str | None = None
    error_detector_params: dict[str, float] | None = None
    label: LabelSpec = LabelSpec()
    columns: Columns = Columns()
    routing: ModelRouting = ModelRouting()
    retrain: RetrainRecipe = RetrainRecipe()

    @field_validator("segments")
    @classmethod
    def _segments_declared(cls, segments: list[str], info: ValidationInfo) -> list[str]:
        features = info.data.get("features") or {}
        for name in segments:
            kind = features[name].type if name in features else None
            if kind is None:
                raise ValueError(
                    f"{name!r} is not a declared feature: declare it under features (categorical, or "
                    "ignore to segment by it without monitoring its drift)"
                )
            if kind == "numeric":
                raise ValueError(f"{name!r} is numeric: segment by a categorical (or ignored) feature")
        return segments

    def feature_type(self, name: str) -> FeatureType | None:
        f = self.features.get(name)
        return None if f is None else f.type

    def kinds(self) -> dict[str, Literal["numeric", "categorical"]]:
        """The monitored features and their kinds, in declaration order."""
        out: dict[str, Literal["numeric", "categorical"]] = {}
        for name in self.features:
            kind = self.feature_type(name)
            if kind == "numeric" or kind == "categorical":
                out[name] = kind
        return out

    def ignored(self) -> set[str]:
        return {name for name in self.features if self.feature_type(name) == "ignore"}

    def feature_budgets(self) -> dict[str, float]:
        """Features with a false-alarm budget of their own."""
        return {
            name: f.false_alarms_per_100k
            for name, f in self.features.items()
            if f.false_alarms_per_100k is not None
        }

    def task_params(self) -> dict[str, Any]:
        """Parameters of this model's task (``detectors.get_task(spec.task, **spec.task_params())``): a
        binary model's positive class when it is not the default ``1``.

        >>> ModelSpec(features={"x": "numeric"}, label={"positive_class": "bad"}).task_params()
        {'positive_class': 'bad'}
        """
        pc = self.label.positive_class
        if self.task != "binary" or (pc == 1 and not isinstance(pc, str)):
            return {}
        return {"positive_class": pc}

    def monitor_overrides(self) -> dict[str, Any]:
        """The ``monitor`` settings this model sets for itself (merged over the global block)."""
        keys = (
            "false_alarms_per_100k",
            "performance_drop",
            "window_size",
            "performance_window",
            "metrics_every",
            "label_lateness_s",
            "error_detector",
            "error_detector_params",
        )
        out: dict[str, Any] = {"task": self.task}
        out |= {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        if self.reference is not None and self.reference.first is not None:
            out["reference_size"] = self.reference.first
        return out
