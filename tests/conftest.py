"""The real Kafka fixtures: one broker per test session, uniquely named topics per test.

- ``kafka_bootstrap`` (session): ``"127.0.0.1:PORT"`` of a running Kafka broker. Uses
  ``DRIFTLINE_TEST_BOOTSTRAP`` if set (a broker you already run), else starts a local KRaft broker
  with ``.ci/kafka_local.py`` in a temporary directory and stops it when the session ends.
- ``kafka_topics`` (function): ``kafka_topics("predictions", partitions=3)`` creates a fresh topic
  and returns its name; ``kafka_topics("a", "b")`` returns a list of names, in order.

Tests that need Kafka carry ``@pytest.mark.kafka``. ``DRIFTLINE_SKIP_KAFKA=1`` skips them; otherwise a
missing Java or Maven is an error that says how to fix it (never a silent skip).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_ENV = "DRIFTLINE_SKIP_KAFKA"
BOOTSTRAP_ENV = "DRIFTLINE_TEST_BOOTSTRAP"
METADATA_TIMEOUT_S = 30.0


def _skip_kafka() -> bool:
    return os.environ.get(SKIP_ENV, "") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _skip_kafka():
        return
    skip = pytest.mark.skip(reason=f"{SKIP_ENV}=1: tests that need the Kafka broker are skipped")
    for item in items:
        if item.get_closest_marker("kafka") is not None:
            item.add_marker(skip)


def _kafka_local() -> ModuleType:
    """``.ci/kafka_local.py``: ``.ci`` is on pytest's ``pythonpath`` (pyproject.toml)."""
    return importlib.import_module("kafka_local")


def _wait_for_metadata(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + METADATA_TIMEOUT_S
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=5).brokers:
                return
        except Exception as exc:  # KafkaException while the broker is still coming up
            error = exc
        time.sleep(0.2)
    pytest.fail(
        f"Kafka at {bootstrap} gave no metadata in {METADATA_TIMEOUT_S:.0f} s: {error}", pytrace=False
    )


@dataclass(frozen=True)
class LocalBroker:
    bootstrap: str  # PLAINTEXT
    secure: dict[str, Any] | None  # KafkaSettings fields for the SASL_SSL listener, if it has one
    why_not_secure: str = ""


SECURE_USER = ("driftline-svc", "s3cret-" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """One broker for the session: PLAINTEXT, plus a SASL_SSL listener (certificates made now)."""
    if _skip_kafka():
        pytest.skip(f"{SKIP_ENV}=1")
    existing = os.environ.get(BOOTSTRAP_ENV)
    if existing:
        _wait_for_metadata(existing)
        yield LocalBroker(existing, None, f"{BOOTSTRAP_ENV} names an external broker")
        return
    kl = _kafka_local()
    workdir = tmp_path_factory.mktemp("kafka")
    broker, problem, sasl_ssl, secure, why = None, "", None, None, ""
    try:
        from kafka_security import SaslSsl, make_certificates

        certs = make_certificates(workdir / "tls")
        sasl_ssl = SaslSsl(certs.keystore, certs.key_password, (SECURE_USER,))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:  # no openssl: PLAINTEXT only
        why = f"no test certificates: {exc}"
    try:
        kl.assemble()
        broker = kl.start(workdir, watch_pid=os.getpid(), sasl_ssl=sasl_ssl)
    except kl.KafkaLocalError as exc:
        problem = str(exc)
    if broker is None:  # fail outside the except block: one clear message, no chained traceback
        pytest.fail(
            f"{problem}\nThe Kafka tests need Java 17+ and Maven (`bash .ci/test` prepares the rest); "
            f"or point {BOOTSTRAP_ENV}=host:port at a running broker; or set {SKIP_ENV}=1 to skip them.",
            pytrace=False,
        )
    if broker.secure_bootstrap and sasl_ssl is not None:
        secure = {
            "bootstrap_servers": broker.secure_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_username": SECURE_USER[0],
            "sasl_password": SECURE_USER[1],
            "ssl_ca_location": str(certs.ca),
        }
    try:
        _wait_for_metadata(broker.bootstrap)
        yield LocalBroker(broker.bootstrap, secure, why)
    finally:
        kl.stop(workdir)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalBroker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def kafka_secure(kafka_broker: LocalBroker) -> dict[str, Any]:
    """KafkaSettings fields (without ``sasl_mechanism``) for the broker's SASL_SSL listener."""
    if kafka_broker.secure is None:
        pytest.skip(f"the test broker has no SASL_SSL listener: {kafka_broker.why_not_secure}")
    return dict(kafka_broker.secure)


@pytest.fixture
def kafka_topics(kafka_bootstrap: str) -> Iterator[Callable[..., str | list[str]]]:
    """The one topic fixture of the Kafka tests. ``kafka_topics("a", "b", partitions=3)`` creates
    uniquely named topics now; at teardown every topic that appeared during the test is deleted --
    these and the ones the code under test created (a demo run's topics, faust changelogs)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    before = set(admin.list_topics(timeout=10).topics)

    def make(*bases: str, partitions: int = 1, config: dict[str, str] | None = None) -> str | list[str]:
        if not bases:
            raise ValueError("kafka_topics needs at least one topic base name")
        names = [f"{base}.{uuid.uuid4().hex[:12]}" for base in bases]
        new = [NewTopic(n, partitions, replication_factor=1, config=config or {}) for n in names]
        for future in admin.create_topics(new, operation_timeout=30).values():
            future.result(timeout=30)
        _wait_for_leaders(admin, names, partitions)
        return names[0] if len(names) == 1 else names

    yield make
    appeared = sorted(t for t in set(admin.list_topics(timeout=10).topics) - before if not t.startswith("__"))
    if appeared:
        for future in admin.delete_topics(appeared, operation_timeout=10).values():
            try:
                future.result(timeout=10)
            except Exception:  # best effort: the broker goes away with the session anyway
                pass


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, kafka_topics: Callable[..., object]) -> Callable[..., Any]:
    """``kafka_settings(partitions=2, **sections)`` -> DriftlineSettings on the test broker with
    topic names of their own (created by the code under test; deleted by ``kafka_topics``)."""
    from driftline.config import DriftlineSettings, KafkaSettings, Topics

    def make(partitions: int = 2, **sections: Any) -> DriftlineSettings:
        run = uuid.uuid4().hex[:8]
        topics = Topics(**{k: f"{v}.{run}" for k, v in Topics().model_dump().items()})
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=partitions)
        return DriftlineSettings(kafka=kafka, topics=topics, **sections)

    return make


def _wait_for_leaders(admin: object, names: list[str], partitions: int) -> None:
    deadline = time.monotonic() + METADATA_TIMEOUT_S
    while True:
        md = admin.list_topics(timeout=5)  # type: ignore[attr-defined]
        ready = [
            n
            for n in names
            if n in md.topics
            and md.topics[n].error is None
            and len(md.topics[n].partitions) == partitions
            and all(p.leader >= 0 for p in md.topics[n].partitions.values())
        ]
        if len(ready) == len(names):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"topics {sorted(set(names) - set(ready))} have no leaders after 30 s", pytrace=False)
        time.sleep(0.05)


from events import drifting_stream, make_label, make_prediction  # noqa: E402,F401  (fixtures for every tier)
