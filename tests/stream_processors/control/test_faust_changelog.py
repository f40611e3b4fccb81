"""The control plane creates its routing table's changelog before faust starts, riding out a broker
that is restarting: started during an outage, faust would find no changelog and its agent would stop
routing for good (its table's partition check fails)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from driftline.config import KafkaSettings
from stream_processors.control import faust_app


def test_the_changelog_is_created_once_the_broker_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[object] = [
        KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down")),
        KafkaException(KafkaError(KafkaError.INVALID_REPLICATION_FACTOR, "All brokers are currently fenced")),
        ["cp-driftline-alert-routing-changelog"],
    ]
    calls: list[tuple[list[str], dict]] = []

    def ensure(kafka: KafkaSettings, topics: list[str], configs: dict) -> list[str]:
        calls.append((list(topics), configs))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    monkeypatch.setattr(faust_app, "ensure_topics", ensure)
    monkeypatch.setattr(faust_app.time, "sleep", lambda s: None)
    faust_app.prepare_changelog(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "cp")
    assert len(calls) == 3 and calls[-1] == (
        ["cp-driftline-alert-routing-changelog"],
        {"cp-driftline-alert-routing-changelog": {"cleanup.policy": "compact"}},
    )


def test_a_request_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> list[str]:
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    monkeypatch.setattr(faust_app, "ensure_topics", denied)
    with pytest.raises(KafkaException):
        faust_app.prepare_changelog(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "cp")
