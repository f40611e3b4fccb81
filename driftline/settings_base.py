"""What every settings section shares: frozen, unknown keys refused, errors that name the key path.

A section's validation error is re-raised as :class:`~driftline.errors.ConfigError` whose message
names each offending key by its full path (``monitor.window_size``, ``models.churn.task``), what is
wrong, the value given (secrets masked) and, for an unknown key, the keys that are valid there.

>>> class Demo(Section, section="demo"):
...     size: int = 1
>>> Demo(sise=2)
Traceback (most recent call last):
...
driftline.errors.ConfigError: demo.sise: unknown key (valid keys: size) (got 2)
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, ValidationError

from driftline.errors import ConfigError

__all__ = ["Key", "Section", "enclosing", "explain", "redact"]

_DEPTH: ContextVar[int] = ContextVar("driftline_section_depth", default=0)


class Section(BaseModel):
    """A block of settings; ``section`` is its key in the whole configuration (for messages)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    section: ClassVar[str] = ""

    def __init_subclass__(cls, section: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if section:
            cls.section = section

    def __init__(self, **data: Any) -> None:
        depth = _DEPTH.get()
        token = _DEPTH.set(depth + 1)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            if depth:  # a section inside another: the outermost one explains, with full paths
                raise
            raise ConfigError(explain(exc, self.section, type(self))) from None
        finally:
            _DEPTH.reset(token)


@contextmanager
def enclosing() -> Iterator[None]:
    """Sections built inside this block are part of a larger whole, which explains their errors."""
    token = _DEPTH.set(_DEPTH.get() + 1)
    try:
        yield
    finally:
        _DEPTH.reset(token)


def _at_least_32(v: SecretStr) -> SecretStr:
    if len(v.get_secret_value()) < 32:
        raise ValueError(
            "use at least 32 characters, e.g. python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return v


Key = Annotated[SecretStr, AfterValidator(_at_least_32)]
"""A signing key: secret, and long enough that guessing it is not an option."""


def explain(exc: ValidationError, section: str = "", root: type[BaseModel] | None = None) -> str:
    """One line per error: ``key.path: what is wrong (got value)``."""
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in ((section,) if section else ()) + loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            valid = _keys_at(root, loc[:-1]) if root is not None else None
            msg = "unknown key" + (f" (valid keys: {', '.join(valid)})" if valid else "")
        got = redact(err.get("input"), loc[-1] if loc else "")
        parts.append(f"{path}: {msg} (got {got!r})")
    return "; ".join(parts)


def _keys_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The field names valid at ``loc`` under ``root`` (following nested models and dict values)."""
    node: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return None
            node = field.annotation
        else:
            return None
        node = _unwrap(node, parts)
    node = _unwrap(node, [])
    if isinstance(node, type) and issubclass(node, BaseModel):
        return sorted(node.model_fields)
    return None


def _unwrap(annotation: Any, parts: list[Any]) -> Any:
    """The model class inside ``X | None``, ``Annotated[X, ...]`` or ``dict[str, X]`` (which eats the
    key from ``parts``)."""
    for _ in range(5):
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [
                a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            annotation = models[0] if models else None
        elif origin is dict:
            if parts:
                parts.pop(0)
            annotation = typing.get_args(annotation)[1]
        else:
            return annotation
    return annotation


_SECRET_KEYS = ("password", "secret", "token", "key", "url")  # webhook URLs carry their tokens


def redact(value: Any, key: object = "") -> Any:
    """The offending input with every secret-looking value masked: errors are printed and logged."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if value is not None and any(word in str(key).lower() for word in _SECRET_KEYS):
        return "**********"
    return value
