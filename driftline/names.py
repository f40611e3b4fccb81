"""Safe names: what a model, a version or a feature may be called.

Kept apart from :mod:`driftline.contracts` (which re-exports everything here) so the contracts module
stays the events alone. A name is safe as one path component, a Kafka key and a metric label.

>>> is_safe_name("churn-v2"), is_safe_name("../etc"), is_safe_name("a\\n")
(True, False, False)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

__all__ = [
    "SAFE_NAMES_SEEN",
    "SAFE_NAME_PATTERN",
    "SafeName",
    "check_safe_name",
    "is_safe_name",
    "unsafe_feature_names",
]

SAFE_NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
"""Model names, versions and feature names: 1-128 of ``A-Z a-z 0-9 . _ -``, not starting with ``.``
or ``-``, no ``..`` -- safe as a path component, a Kafka key, a metric label."""
SafeName = Annotated[str, msgspec.Meta(pattern=SAFE_NAME_PATTERN)]
_SAFE_NAME = re.compile(SAFE_NAME_PATTERN)
SAFE_NAMES_SEEN: set[str] = set()
"""Names already found safe (a regex per name costs ~1 us; a set hit ~30 ns). Bounded (100,000)."""


def unsafe_feature_names(predictions: Sequence[Any]) -> list[tuple[int, str]]:
    """(position, reason) of the predictions whose feature names are not :data:`SafeName`s.

    Checked per batch, not per event in :func:`~driftline.contracts.decode`: the distinct names of a
    batch are few, each is checked once per process, so the cost is one set union per batch (a regex
    per key would double the decode cost).

    >>> from driftline.contracts import Prediction
    >>> ok = Prediction(prediction_id="a", model="m", model_version="1", event_time=0.0,
    ...                 features={"age": 1.0}, prediction=1)
    >>> unsafe_feature_names([ok, msgspec.structs.replace(ok, features={"../etc": 1.0})])
    [(1, "feature name '../etc' is not a safe name: 1-128 of A-Z a-z 0-9 . _ -, no '..'")]
    """
    names: set[str] = set().union(*(p.features for p in predictions))
    bad = {n: _name_problem(n) for n in names - SAFE_NAMES_SEEN}
    bad = {n: why for n, why in bad.items() if why}
    if not bad:
        return []
    return [(i, bad[name]) for i, p in enumerate(predictions) for name in p.features if name in bad][
        : len(predictions)
    ]


def is_safe_name(name: object) -> bool:
    """Whether ``name`` matches :data:`SAFE_NAME_PATTERN` (whose ``$`` would also accept a final newline)."""
    return isinstance(name, str) and _SAFE_NAME.match(name) is not None and "\n" not in name


def check_safe_name(name: str, field: str) -> None:
    """Raise ``ValueError`` naming ``field`` unless ``name`` is a :data:`SafeName`. For the fields of
    events decoded per record (a prediction's model and version): a name seen valid is a set hit
    (~30 ns), where the pattern in the decoder cost ~1 us per field and record.

    >>> check_safe_name("churn", "model")
    >>> check_safe_name("../x", "model")
    Traceback (most recent call last):
    ...
    ValueError: '../x' is not a safe name: 1-128 of A-Z a-z 0-9 . _ -, no '..' - at `$.model`
    """
    if name in SAFE_NAMES_SEEN:
        return
    if not is_safe_name(name):
        rule = "1-128 of A-Z a-z 0-9 . _ -, no '..'"
        raise ValueError(f"{name[:80]!r} is not a safe name: {rule} - at `$.{field}`")
    if len(SAFE_NAMES_SEEN) < 100_000:  # bounded: a stream of invented names cannot grow it forever
        SAFE_NAMES_SEEN.add(name)


def _name_problem(name: str) -> str:
    if is_safe_name(name):
        if len(SAFE_NAMES_SEEN) < 100_000:  # bounded: a stream of invented names cannot grow it forever
            SAFE_NAMES_SEEN.add(name)
        return ""
    return f"feature name {name[:80]!r} is not a safe name: 1-128 of A-Z a-z 0-9 . _ -, no '..'"
