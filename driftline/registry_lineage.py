"""Lineage of a registered version: what a person needs to reproduce it or to trust it.

A version's ``lineage`` (``ModelVersion.lineage``, string to string so every registry backend can
store it as tags) holds the digest of the rows it was trained on, the trainer, the estimator's
parameters and the code that trained it. :func:`lineage_of` builds it; the retrain worker passes it to
``register``.

>>> lin = lineage_of([{"x": 1.0, "y": 0}], trainer="refit_clone", estimator=None)
>>> sorted(lin), len(lin["data_sha256"])
(['code_version', 'data_sha256', 'params', 'trainer'], 64)
>>> data_sha256([{"x": 1.0}]) == data_sha256([{"x": 1.0}]) != data_sha256([{"x": 2.0}])
True
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["code_version", "data_sha256", "estimator_params", "lineage_of", "offset_ranges"]

MAX_PARAMS = 60  # an MLflow run takes 100 params a batch; a pipeline's nested ones are cut here
MAX_PARAM_CHARS = 250


def data_sha256(rows: Iterable[Any]) -> str:
    """SHA-256 of the rows in order (each JSON-encoded, newline-separated): the same window gives the
    same digest in any process, so two versions say whether they saw the same data."""
    h = hashlib.sha256()
    for row in rows:
        h.update(msgspec.json.encode(row))
        h.update(b"\n")
    return h.hexdigest()


def estimator_params(estimator: Any) -> dict[str, str]:
    """The estimator's ``get_params()`` as bounded strings (at most ``MAX_PARAMS`` of
    ``MAX_PARAM_CHARS`` characters); {} for a model without it."""
    get = getattr(estimator, "get_params", None)
    if not callable(get):
        return {}
    try:
        params = get()
    except Exception:  # a user's model whose get_params needs arguments: no parameters, not a failure
        return {}
    return {str(k): repr(v)[:MAX_PARAM_CHARS] for k, v in sorted(params.items())[:MAX_PARAMS]}


@functools.cache
def code_version() -> str:
    """``driftline <version>`` and the git commit of the checkout it runs from, when it is one."""
    try:
        version = metadata.version("driftline")
    except metadata.PackageNotFoundError:
        version = "unknown"
    root = Path(__file__).resolve().parent.parent
    commit = ""
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            )
            commit = out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            commit = ""
    return f"driftline {version}" + (f" (git {commit})" if commit else "")


def offset_ranges(rows: Iterable[Any], where: Mapping[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Per partition, the first and last offset of ``rows`` (``where``: ``id(row)`` -> (partition,
    offset) of the record it was read from); rows of unknown origin are left out.

    >>> a, b, c = object(), object(), object()
    >>> offset_ranges([a, b, c], {id(a): (0, 7), id(b): (1, 3), id(c): (0, 2)})
    {0: (2, 7), 1: (3, 3)}
    """
    out: dict[int, tuple[int, int]] = {}
    for row in rows:
        if id(row) in where:
            part, off = where[id(row)]
            lo, hi = out.get(part, (off, off))
            out[part] = (min(lo, off), max(hi, off))
    return dict(sorted(out.items()))


def lineage_of(
    rows: Iterable[Any],
    *,
    trainer: str,
    estimator: Any,
    topic: str = "",
    offsets: Mapping[int, tuple[int, int]] | None = None,
) -> dict[str, str]:
    """The lineage the retrain worker records with a version it registers; with ``offsets``, where
    its training rows are on ``topic`` (per partition, first and last offset) as ``trained_on_offsets``."""
    rows = list(rows)
    lineage = {
        "data_sha256": data_sha256(rows),
        "trainer": trainer,
        "params": json.dumps(estimator_params(estimator), sort_keys=True),
        "code_version": code_version(),
    }
    if offsets:
        parts = {str(p): [lo, hi] for p, (lo, hi) in offsets.items()}
        lineage["trained_on_offsets"] = json.dumps({"topic": topic, "partitions": parts}, sort_keys=True)
    return lineage
