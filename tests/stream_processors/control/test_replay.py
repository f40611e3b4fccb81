"""kill -9 of the control plane, modelled without a broker: what faust recovers after a kill, and the
replay from the last committed offset, against one uninterrupted run.

faust flushes every message and changelog record of an alert before it commits the alert's offset; after
the commit point ``c`` a kill at ``k`` leaves each routing-table entry as written by some record between
``c`` and ``k`` (its changelog may or may not have reached the broker), independently per entry. The
control plane then reads again from ``c``. Whatever survived, a user must see the same notifications and
retrain requests after dropping copies by id, and every delivered alert must have reached the sinks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from events import alert

from driftline.config import RoutingSettings, Topics
from driftline.contracts import (
    Alert,
    Incident,
    Metric,
    RetrainRequest,
    Window,
    decode,
    decode_notification,
    encode,
)
from driftline.transport import Record
from stream_processors.control.handler import AlertHandler
from stream_processors.control.routing import AlertRouter

TOPICS = Topics()


def alerts(rng: np.random.Generator, n: int) -> list[Alert | Metric]:
    """Alerts of two types on two models, some sent twice (a replaying processor), times rising; and
    the accuracy of each model's version 2, healthy or not, which resolves their incidents."""
    out: list[Alert | Metric] = []
    for i in range(n):
        if out and rng.random() < 0.2:
            out.append(out[int(rng.integers(len(out)))])
            continue
        if rng.random() < 0.4:
            w = Window(start_index=99 + i, end_index=100 + i, start_time=float(i), end_time=float(i), n=1)
            model, value = ["churn", "fraud"][int(rng.integers(2))], [0.5, 0.95][int(rng.random() < 0.8)]
            out.append(Metric(model=model, model_version="2", name="accuracy", value=value, window=w))
            continue
        kind = ["concept_drift", "data_drift"][int(rng.integers(2))]
        model = ["churn", "fraud"][int(rng.integers(2))]
        feature = "x" if kind == "data_drift" else None
        out.append(alert(f"a{i}", t=100.0 + 40 * i, kind=kind, feature=feature, model=model))
    return out


class Writes(dict[str, Any]):
    """A routing table that logs every write: (record index, key, entry), as its changelog would."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, str, Any]] = []
        self.at = -1

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.log.append((self.at, key, value))


def run(
    records: list[Alert | Metric],
    state: dict[str, Any],
    start: int,
    stop: int,
    seen: dict[str, list[str]],
    lost: set[int] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Route records ``start..stop-1`` (read at offsets = their indexes); collect what goes out, but
    not the messages of the records in ``lost`` (still in the producer's buffer at the kill)."""
    handler = AlertHandler(AlertRouter(RoutingSettings(cooldown_s=100), state), TOPICS)
    for i in range(start, stop):
        if isinstance(state, Writes):
            state.at = i
        topic = TOPICS.metrics if isinstance(records[i], Metric) else TOPICS.alerts
        handled = handler.handle(Record(topic, encode(records[i]), b"k", partition=0, offset=i))
        seen["sinks"] += [_id(n) for n in handled.notes]
        for o in handled.outputs if i not in lost else []:
            if o.topic == TOPICS.retrain:
                seen[o.topic].append(decode(RetrainRequest, o.value).request_id)
            else:
                seen[o.topic].append(_id(decode_notification(o.value)))


def _id(note: object) -> str:
    """An alert's id, or an incident notification's (its incident, revision, status and features)."""
    if isinstance(note, Incident):
        return f"{note.notification_id}:{note.status}:{','.join(note.features)}:{note.severity}"
    assert isinstance(note, Alert)
    return note.alert_id


def empty() -> dict[str, list[str]]:
    return {"sinks": [], TOPICS.notifications: [], TOPICS.retrain: []}


@pytest.mark.parametrize("seed", range(6))
def test_a_kill_at_any_point_with_any_changelog_prefix_changes_nothing_after_dedup(seed: int) -> None:
    rng = np.random.default_rng(seed)
    records = alerts(rng, 24)
    clean = empty()
    run(records, {}, 0, len(records), clean)
    assert len(clean[TOPICS.notifications]) == len(set(clean[TOPICS.notifications])) > 2
    assert any(":resolved:" in n for n in clean[TOPICS.notifications])  # the metrics resolve incidents
    for _ in range(60):
        commit, kill = sorted(int(x) for x in rng.integers(0, len(records) + 1, 2))
        first = Writes()
        seen = empty()
        unflushed = {i for i in range(commit, kill) if rng.random() < 0.5}
        run(records, first, 0, kill, seen, unflushed)
        recovered: dict[str, Any] = {}  # per entry: its last write before a point between commit and kill
        for key in {k for _, k, _ in first.log}:  # routing entries and the models' incident entries
            upto = int(rng.integers(commit, kill + 1))
            for i, k, value in first.log:
                if k == key and i < upto:
                    recovered[key] = value
        run(records, recovered, commit, len(records), seen)
        for out in (TOPICS.notifications, TOPICS.retrain, "sinks"):
            assert set(seen[out]) == set(clean[out]), (out, commit, kill)  # nothing lost, nothing extra
