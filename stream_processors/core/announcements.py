"""Which models and versions the processor monitors: those announced on the models topic.

A prediction names its model version itself, so without a list of known versions anyone who can
produce to the predictions topic can invent versions -- each one new per-version state, and past
``monitor.max_versions`` the live version's state is evicted (its drift and performance alerts
vanish). The registry announces every version it registers (a
:class:`~driftline.contracts.ModelUpdate`, ``kind`` "registered" or "promoted"); a prediction for
any other (model, version) is dead-lettered with a reason that says how to announce it.

The table is global, not per partition: every processor instance reads the whole models topic,
whatever input partitions it owns, so it is never part of a partition's checkpoint. Pure: the
runners read the topic and call :meth:`Announcements.announce`.

>>> from driftline.contracts import ModelUpdate
>>> table = Announcements("driftline.models")
>>> table.announce(ModelUpdate(model="churn", version="1", kind="registered",
...                            previous_version=None, artifact_uri=""))
True
>>> table.check("churn", "1") is None
True
>>> print(table.check("churn", "7"))  # doctest: +NORMALIZE_WHITESPACE
model 'churn' version '7' was never announced on the models topic 'driftline.models'
(announced versions of 'churn': '1'): announce it with `driftline models announce churn 7`,
or publish a ModelUpdate (kind "registered") keyed by the model
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Set

from driftline.contracts import ModelUpdate, decode
from driftline.errors import InvalidEvent
from driftline.transport import Record

__all__ = ["Announcements", "updates_in"]

log = logging.getLogger(__name__)

_LISTED = 10  # names a reason lists (the most recent ones)


class Announcements:
    """The announced (model, version) pairs; ``topic`` is the models topic the reasons name."""

    def __init__(self, topic: str = "driftline.models") -> None:
        self.topic = topic
        self._versions: dict[str, dict[str, None]] = {}  # model -> its versions, in announcement order

    def __len__(self) -> int:
        return sum(len(v) for v in self._versions.values())

    def announce(self, update: ModelUpdate) -> bool:
        """Learn ``update``'s (model, version), whatever its kind; True if it was not known yet."""
        versions = self._versions.setdefault(update.model, {})
        if update.version in versions:
            return False
        versions[update.version] = None
        return True

    def check(self, model: str, version: str) -> str | None:
        """None if ``(model, version)`` was announced, else the reason a prediction for it is refused."""
        versions = self._versions.get(model)
        if versions is not None and version in versions:
            return None
        how = (
            f"announce it with `driftline models announce {model} {version}`, "
            'or publish a ModelUpdate (kind "registered") keyed by the model'
        )
        if versions is None:
            known = _listed(self._versions) or "none yet"
            return (
                f"model {model!r} was never announced on the models topic {self.topic!r} "
                f"(announced models: {known}): {how}"
            )
        return (
            f"model {model!r} version {version!r} was never announced on the models topic {self.topic!r} "
            f"(announced versions of {model!r}: {_listed(versions)}): {how}"
        )

    def unannounced(self, model: str, versions: Set[str]) -> dict[str, str]:
        """The reason for each of ``versions`` (a batch's, for ``model``) that was not announced.

        One set difference per batch: the per-prediction cost stays a set lookup in the caller."""
        known = self._versions.get(model)
        missing = versions if known is None else versions - known.keys()
        return {v: reason for v in missing if (reason := self.check(model, v)) is not None}


def updates_in(records: Iterable[Record]) -> list[ModelUpdate]:
    """The model updates among ``records`` (read off the models topic); an invalid one is logged and
    skipped -- a bad record there must not stop the processor, and dead-lettering it would repeat in
    every instance on every restart."""
    out = []
    for rec in records:
        try:
            out.append(decode(ModelUpdate, rec.value))
        except InvalidEvent as exc:
            log.error(
                "models topic %s[%d]@%d: ignoring an invalid record: %s",
                rec.topic,
                rec.partition,
                rec.offset,
                exc,
            )
    return out


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[-_LISTED:])
    return shown if len(names) <= _LISTED else f"{shown} and {len(names) - _LISTED} more"
