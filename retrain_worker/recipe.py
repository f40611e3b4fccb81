"""A model's retraining recipe, from its spec: the user's trainer, its window and promotion rule.

The spec's ``retrain:`` block (:class:`driftline.spec.RetrainRecipe`) names a trainer as
``package.module:function``. It is imported once, when the worker starts, so a typo or a missing
module fails then -- naming ``models.<model>.retrain.trainer`` -- and never at the first alert. The
trainer is called as ``fit(X, y)``: ``X`` a pandas DataFrame of the window's *declared* features
(``ignore`` ones left out, in declaration order), ``y`` the labels as a Series; it returns a fitted
model whose ``predict`` takes such a DataFrame. The model may bring its own preprocessing (an sklearn
``Pipeline``): Driftline never transforms the features.

Where the module comes from: ``sys.path`` as it is, then the spec file's folder (``trainer_path``,
appended, lowest priority: a module of the same name installed elsewhere wins -- give yours a
distinctive name). A retrained model is pickled into the registry; if it holds classes of the trainer's
own module, whatever loads it (serving) must be able to import that module too.

>>> recipe = RetrainRecipe(trainer="statistics:fmean", min_samples=200)
>>> callable(load_trainer("churn", recipe))
True
>>> load_trainer("churn", RetrainRecipe(trainer="statistics:nope"))
Traceback (most recent call last):
...
driftline.errors.ConfigError: models.churn.retrain.trainer: module 'statistics' has no attribute 'nope'
>>> settings_for(RetrainSettings(), recipe).min_samples
200
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from detectors.tasks import Task, get_task
from driftline.config import RetrainSettings
from driftline.errors import ConfigError
from driftline.spec import ModelSpec, RetrainRecipe
from retrain_worker.training import Trainer

__all__ = ["Recipes", "UserTrainer", "load_trainer", "recipe_trainer", "settings_for"]

UserTrainer = Callable[[pd.DataFrame, pd.Series], Any]
"""``fit(X, y) -> model``: the user's trainer."""


def load_trainer(model: str, recipe: RetrainRecipe) -> UserTrainer | None:
    """The recipe's trainer, imported (None when the recipe names none); a module that cannot be
    imported, a missing attribute or one that is not callable raises :class:`ConfigError`."""
    if recipe.trainer is None:
        return None
    key = f"models.{model}.retrain.trainer"
    module_name, _, attr = recipe.trainer.partition(":")
    if recipe.trainer_path and recipe.trainer_path not in sys.path:
        sys.path.append(recipe.trainer_path)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # not found, or the module itself raised while importing
        where = f" (looked on sys.path and in {recipe.trainer_path})" if recipe.trainer_path else ""
        raise ConfigError(
            f"{key}: cannot import {module_name!r}{where}: {type(exc).__name__}: {exc}"
        ) from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise ConfigError(f"{key}: module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise ConfigError(f"{key}: {recipe.trainer} is a {type(fn).__name__}, not a function fit(X, y)")
    return fn  # type: ignore[no-any-return]


def settings_for(base: RetrainSettings, recipe: RetrainRecipe) -> RetrainSettings:
    """``base`` with the recipe's own values over it (window, minimum, cooldown, promotion)."""
    own = {
        "train_window": recipe.train_window,
        "min_samples": recipe.min_samples,
        "cooldown_s": recipe.cooldown_s,
        "min_improvement": recipe.promotion.min_improvement,
        "holdout_fraction": recipe.promotion.holdout_fraction,
        "confidence": recipe.promotion.confidence,
        "shadow_labelled": recipe.promotion.shadow_labelled,
        "rollback": recipe.rollback.enabled,
        "rollback_min_labelled": recipe.rollback.min_labelled,
    }
    given = {k: v for k, v in own.items() if v is not None}
    return base.model_copy(update=given) if given else base


def recipe_trainer(name: str, fit: UserTrainer) -> Trainer:
    """The user's ``fit(X, y)`` as the worker's trainer (which also receives the champion); a result
    without ``predict`` is refused with the trainer's name."""

    def train(champion: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
        model = fit(X, pd.Series(y, index=X.index, name="label"))
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"trainer {name} returned a {type(model).__name__}, not a model with predict()")
        return model

    return train


class Recipes:
    """Per model, what its retrains use: its settings (the spec's recipe over ``base``), its task
    (whose validation metric compares champion and challenger), its trainer and the columns that
    trainer sees. A model without a spec, or whose recipe names no trainer, gets ``default_trainer``
    on every feature its events carry (today's ``refit_clone``); trainers are imported here, at
    start-up."""

    def __init__(
        self,
        base: RetrainSettings,
        models: Mapping[str, ModelSpec],
        default_trainer: Trainer,
        default_task: Task,
    ) -> None:
        self.base, self.models = base, dict(models)
        self.default_trainer, self.default_task = default_trainer, default_task
        self._fits: dict[str, UserTrainer] = {}
        self._tasks: dict[str, Task] = {}
        for model, spec in self.models.items():
            fn = load_trainer(model, spec.retrain)
            if fn is not None:
                self._fits[model] = fn
            try:
                self._tasks[model] = get_task(spec.task)
            except Exception as exc:  # a task this installation does not have
                raise ConfigError(f"models.{model}.task: {exc}") from None

    def settings(self, model: str) -> RetrainSettings:
        spec = self.models.get(model)
        return self.base if spec is None else settings_for(self.base, spec.retrain)

    def task(self, model: str) -> Task:
        return self._tasks.get(model, self.default_task)

    def trainer(self, model: str) -> Trainer:
        fn = self._fits.get(model)
        return self.default_trainer if fn is None else recipe_trainer(self.trainer_name(model), fn)

    def trainer_name(self, model: str) -> str:
        spec = self.models.get(model)
        own = spec.retrain.trainer if spec is not None else None
        return own or str(getattr(self.default_trainer, "__name__", "the default trainer"))

    def features(self, model: str) -> list[str] | None:
        """The declared features when the user's trainer fits (None: every feature, as refit_clone)."""
        return list(self.models[model].kinds()) if model in self._fits else None
