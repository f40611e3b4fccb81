"""Reading the spec file: YAML in, a settings source out, every mistake named at start-up.

The file is one source of :class:`~driftline.config.DriftlineSettings`, below the ``DRIFTLINE_*``
environment (which overrides it) and explicit arguments. Relative ``reference.path`` entries are read
from the file's folder, so a spec and its reference data travel together; a ``retrain.trainer`` is
imported with the file's folder (or its ``trainer_path``, relative to it) on ``sys.path``.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "spec.yaml").write_text("models:\\n  churn:\\n    features: {age: numeric}\\n")
>>> with reading(str(d / "spec.yaml")) as source:
...     source.data["models"]["churn"]["features"]
{'age': 'numeric'}
>>> _ = (d / "bad.yaml").write_text("models:\\n  churn: [\\n")
>>> with reading(str(d / "bad.yaml")):
...     pass
Traceback (most recent call last):
...
driftline.errors.ConfigError: bad.yaml: not valid YAML: line 3, column 1: expected the node ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from driftline.errors import ConfigError

__all__ = ["CONFIG_ENV", "SpecFileSource", "check_env_sections", "reading", "revealed"]

CONFIG_ENV = "DRIFTLINE_CONFIG"
"""The environment variable naming the spec file when no ``--config`` is given."""

# DRIFTLINE_* variables that are not settings (no "__": they cannot name a section's key anyway)
_NOT_SETTINGS = ("CONFIG", "LOG_LEVEL")


@dataclass
class _Loaded:
    path: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def where(self) -> str:
        return f"{self.path.name}: " if self.path else ""


_CURRENT: ContextVar[_Loaded | None] = ContextVar("driftline_spec_file", default=None)


@contextmanager
def reading(config: str | None) -> Iterator[_Loaded]:
    """Settings built inside this block read ``config`` (None: ``$DRIFTLINE_CONFIG``, if set)."""
    path = config or os.environ.get(CONFIG_ENV) or None
    loaded = _Loaded() if path is None else _load(Path(path))
    token = _CURRENT.set(loaded)
    try:
        yield loaded
    finally:
        _CURRENT.reset(token)


def _load(path: Path) -> _Loaded:
    if not path.is_file():
        raise ConfigError(f"spec file {str(path)!r} does not exist (--config / {CONFIG_ENV})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path.name}: not valid YAML: {at}{getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping of sections (models:, monitor:...)")
    for spec in (data.get("models") or {}).values() if isinstance(data.get("models"), dict) else ():
        ref = spec.get("reference") if isinstance(spec, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("path"), str) and not Path(ref["path"]).is_absolute():
            ref["path"] = str((path.parent / ref["path"]).resolve())
        recipe = spec.get("retrain") if isinstance(spec, dict) else None
        if isinstance(recipe, dict) and isinstance(recipe.get("trainer"), str):  # imported from its folder
            recipe["trainer_path"] = str((path.parent / str(recipe.get("trainer_path") or ".")).resolve())
    return _Loaded(path, data)


class SpecFileSource(PydanticBaseSettingsSource):
    """The spec file being read (see :func:`reading`) as a pydantic-settings source."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        loaded = _CURRENT.get()
        return (loaded.data.get(field_name) if loaded else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        loaded = _CURRENT.get()
        return dict(loaded.data) if loaded else {}


def check_env_sections(sections: set[str]) -> None:
    """Fail on a ``DRIFTLINE_<SECTION>__<KEY>`` variable whose section does not exist: a typo there
    would otherwise be ignored and the default used without a word."""
    for name in sorted(os.environ):
        if not name.startswith("DRIFTLINE_") or "__" not in name:
            continue
        section = name[len("DRIFTLINE_") :].split("__", 1)[0]
        if section in _NOT_SETTINGS or section.lower() in sections:
            continue
        valid = ", ".join(f"DRIFTLINE_{s.upper()}__..." for s in sorted(sections))
        raise ConfigError(f"{name}: unknown section {section.lower()!r} (valid: {valid})")


def revealed(value: Any) -> Any:
    """``value`` as plain JSON-able data with its secrets in clear (for a child's environment only)."""
    if isinstance(value, BaseModel):
        return {k: revealed(v) for k, v in value if v is not None}
    if isinstance(value, dict):
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [revealed(v) for v in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value
