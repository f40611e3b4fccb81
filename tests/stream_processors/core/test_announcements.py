"""Only announced model versions are monitored: a prediction for any other is a dead letter that says
how to announce it, creates no state, and can never evict the state of a live version."""

from __future__ import annotations

import pytest
from events import record

from driftline.config import MonitorSettings, Topics
from driftline.contracts import DeadLetter, ModelUpdate, encode
from driftline.transport import Record
from stream_processors.core.announcements import Announcements, updates_in
from stream_processors.core.processor import ProcessorCore

TOPICS = Topics()


def update(model: str, version: str, kind: str = "registered") -> ModelUpdate:
    return ModelUpdate(model=model, version=version, kind=kind, previous_version=None, artifact_uri="")  # type: ignore[arg-type]


def core_with(*announced: tuple[str, str], max_versions: int = 4) -> ProcessorCore:
    core = ProcessorCore(
        MonitorSettings(max_versions=max_versions), TOPICS, announcements=Announcements(TOPICS.models)
    )
    for model, version in announced:
        core.announce(update(model, version))
    return core


@pytest.mark.parametrize("kind", ["registered", "promoted"])
def test_both_kinds_announce_a_version(kind: str) -> None:
    table = Announcements(TOPICS.models)
    assert table.check("m", "1") is not None
    assert table.announce(update("m", "1", kind)) is True
    assert table.announce(update("m", "1", kind)) is False  # a replayed announcement changes nothing
    assert table.check("m", "1") is None and len(table) == 1


def test_reasons_say_how_to_announce_and_list_what_is_known() -> None:
    table = Announcements("models.t")
    for v in ("1", "2"):
        table.announce(update("churn", v))
    version = table.check("churn", "9")
    model = table.check("fraud", "1")
    assert version is not None and model is not None
    assert "`driftline models announce churn 9`" in version and "ModelUpdate" in version
    assert "'models.t'" in version and "announced versions of 'churn': '1', '2'" in version
    assert "model 'fraud' was never announced" in model and "announced models: 'churn'" in model
    assert "`driftline models announce fraud 1`" in model


def test_a_long_list_is_cut_to_the_most_recent() -> None:
    table = Announcements(TOPICS.models)
    for v in range(25):
        table.announce(update("m", str(v)))
    reason = table.check("m", "x")
    assert reason is not None and "'24'" in reason and "'14'" not in reason and "and 15 more" in reason


def test_unannounced_predictions_are_dead_lettered_and_create_no_state(make_prediction, make_label) -> None:
    core = core_with(("m", "1"))
    good = [record(make_prediction(i)) for i in range(20)]
    invented = [record(make_prediction(100 + i, version=f"fake{i}")) for i in range(3)]
    other_model = [record(make_prediction(200, model="ghost"))]
    out = core.process(good[:10] + invented + other_model + good[10:])
    dead = {d.original: d for d in out.dead_letters}
    assert sorted(dead) == sorted(r.value for r in invented + other_model)
    assert all(d.stage == "validate" and d.error_type == "InvalidEvent" for d in dead.values())
    assert "driftline models announce m fake0" in dead[invented[0].value].reason
    assert "model 'ghost' was never announced" in dead[other_model[0].value].reason
    assert list(core.models) == ["m"] and list(core.models["m"].versions) == ["1"]
    assert core.models["m"].n_predictions == 20  # the announced ones, every one
    # labels are keyed by prediction id: those of announced predictions join as before
    labelled = core.process([record(make_label(i)) for i in range(20)])
    labelled.extend(core.drain())
    assert len(labelled.scored) == 20 and labelled.dead_letters == []


def test_invented_versions_never_evict_the_live_version(make_prediction) -> None:
    core = core_with(("m", "1"), max_versions=2)
    core.process([record(make_prediction(i)) for i in range(10)])
    live = core.models["m"].versions["1"]
    out = core.process([record(make_prediction(100 + i, version=f"v{i}")) for i in range(50)])
    assert len(out.dead_letters) == 50
    assert list(core.models["m"].versions) == ["1"] and core.models["m"].versions["1"] is live


def test_without_announcements_every_version_is_monitored_and_can_evict(make_prediction) -> None:
    """What ``monitor.require_announcement=false`` gives (a core without a table): today's behaviour,
    and its risk -- invented versions push the live version's state out."""
    core = ProcessorCore(MonitorSettings(max_versions=2), TOPICS)
    core.process([record(make_prediction(i)) for i in range(10)])
    core.announce(update("m", "1"))  # nothing to learn into
    out = core.process([record(make_prediction(100 + i, version=f"v{i}")) for i in range(3)])
    assert out.dead_letters == [] and "1" not in core.models["m"].versions


def test_a_version_announced_later_is_monitored_from_then_on(make_prediction) -> None:
    core = core_with(("m", "1"))
    early = core.process([record(make_prediction(0, version="2"))])
    core.announce(update("m", "2", "promoted"))
    late = core.process([record(make_prediction(1, version="2"))])
    assert len(early.dead_letters) == 1 and late.dead_letters == []
    assert list(core.models["m"].versions) == ["2"]


def test_invalid_records_on_the_models_topic_are_skipped(caplog) -> None:
    records = [
        Record(TOPICS.models, encode(update("m", "1")), b"m", 0, 0),
        Record(TOPICS.models, b"{not json", b"m", 0, 1),
        Record(TOPICS.models, b'{"model": "m"}', b"m", 0, 2),
        Record(TOPICS.models, encode(update("m", "2", "promoted")), b"m", 0, 3),
    ]
    assert [(u.model, u.version, u.kind) for u in updates_in(records)] == [
        ("m", "1", "registered"),
        ("m", "2", "promoted"),
    ]
    assert sum("ignoring an invalid record" in r.message for r in caplog.records) == 2


def test_a_dead_letter_keeps_the_original_record(make_prediction) -> None:
    core = core_with(("m", "1"))
    rec = Record(TOPICS.predictions, encode(make_prediction(5, version="x")), b"m", 3, 41)
    (d,) = core.process([rec]).dead_letters
    assert isinstance(d, DeadLetter) and (d.topic, d.partition, d.offset, d.original) == (
        TOPICS.predictions,
        3,
        41,
        rec.value,
    )
