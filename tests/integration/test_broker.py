"""The real broker behaves like Kafka 4.x for both client stacks Driftline uses.

- confluent-kafka (librdkafka): idempotent producer -> batched ``consume(num_messages=...)``.
- faust-streaming on aiokafka: an agent reads one topic, keeps a changelog-backed Table, writes another.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.kafka


def _api_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    from kafka_broker_control import api_versions  # .ci is on pytest's pythonpath

    host, port = bootstrap.rsplit(":", 1)
    return api_versions(host, int(port))


def _consume_all(bootstrap: str, topic: str, n: int, timeout: float = 30.0) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 50,
        }
    )
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                assert msg.error() is None, msg.error()
                got.append(msg)
    finally:
        consumer.close()
    return got


def test_broker_speaks_kafka_4_kraft(kafka_bootstrap: str) -> None:
    versions = _api_versions(kafka_bootstrap)
    assert versions[1][0] >= 4, "Kafka 4.0 removed Fetch v0-v3 (KIP-896); an older broker still has them"
    assert 55 in versions, "DescribeQuorum (KRaft) is not offered"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # keep the handle alive while waiting
    cluster = admin.describe_cluster().result(timeout=10)
    assert cluster.nodes and cluster.cluster_id


def test_idempotent_producer_to_batched_consumer(kafka_bootstrap: str, kafka_topics) -> None:
    topic = kafka_topics("roundtrip", partitions=3)
    n = 3000
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    delivered: dict[int, tuple[str, int]] = {}

    def on_delivery(err, msg) -> None:
        assert err is None, err
        delivered[json.loads(msg.value())["i"]] = (msg.key().decode(), msg.partition())

    for i in range(n):
        key = f"model-{i % 7}"
        producer.produce(topic, key=key, value=json.dumps({"i": i, "model": key}), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert len(delivered) == n

    got = _consume_all(kafka_bootstrap, topic, n)
    assert len(got) == n
    seen = {json.loads(m.value())["i"]: (m.key().decode(), m.partition()) for m in got}
    assert seen == delivered  # every message once, with its key and partition
    partition_of: dict[str, set[int]] = defaultdict(set)
    for key, partition in seen.values():
        partition_of[key].add(partition)
    assert all(len(p) == 1 for p in partition_of.values()), "one key, one partition"
    assert len({p for ps in partition_of.values() for p in ps}) > 1, "keys spread over partitions"
    last: dict[str, int] = {}
    for m in got:  # per-key order survives
        key, i = m.key().decode(), json.loads(m.value())["i"]
        assert i > last.get(key, -1)
        last[key] = i


def _make_faust_app(app_id: str, bootstrap: str, datadir: Path, source: str, sink: str, partitions: int):
    import faust

    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        datadir=str(datadir),
        web_enabled=False,
        store="memory://",
        topic_partitions=partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        broker_commit_every=100,
    )
    src = app.topic(source, key_serializer="raw", value_serializer="json", partitions=partitions)
    dst = app.topic(sink, key_serializer="raw", value_serializer="json", partitions=partitions)
    counts = app.Table("counts", default=int, partitions=partitions)

    @app.agent(src)
    async def count(stream):
        async for key, value in stream.items():
            name = key.decode()  # table keys as str: the changelog encodes keys as JSON
            counts[name] += 1
            await dst.send(key=key, value={"i": value["i"], "count": counts[name]})

    return app, counts


async def _run_until(app, counts, expected: dict[str, int], settle_s: float = 0.0) -> dict[str, int]:
    """Start ``app``, wait (bounded) until its table equals ``expected``, optionally settle; stop it."""
    await app.start()
    try:
        deadline = time.monotonic() + 45
        while dict(counts.items()) != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(settle_s)
        return dict(counts.items())
    finally:
        await asyncio.wait_for(app.stop(), timeout=30)


@pytest.mark.timeout(240)
def test_the_sinks_records_arrive_with_their_keys_partitions_and_timestamps(
    kafka_bootstrap: str, kafka_topics
) -> None:
    """KafkaSink calls librdkafka's produce with positional arguments (faster than keywords): each
    record lands with its key, in its key's partition (as a keyword call puts it), at its timestamp."""
    from driftline.config import KafkaSettings
    from driftline.kafka import KafkaSink

    topic = kafka_topics("sink", partitions=4)
    sink = KafkaSink(KafkaSettings(bootstrap_servers=kafka_bootstrap), block=True)
    sent = [(topic, f"m{i % 7}".encode(), f"v{i}".encode(), 1_700_000_000.0 + i * 0.5) for i in range(40)]
    sink.send_many(sent[:30])
    for t, k, v, ts in sent[30:]:
        sink.send(t, k, v, ts)
    assert sink.flush(30) == 0 and sink.failed == 0
    reference = Producer({"bootstrap.servers": kafka_bootstrap})
    where: dict[bytes, int] = {}
    for i in range(7):  # where a keyword call puts each key
        key = f"m{i}".encode()
        note = lambda err, m, key=key: where.setdefault(key, m.partition())  # noqa: E731
        reference.produce(topic, b"", key, on_delivery=note)
    reference.flush(30)
    got = {m.value(): m for m in _consume_all(kafka_bootstrap, topic, 47)}
    for _, key, value, ts in sent:
        m = got[value]
        assert m.key() == key and m.partition() == where[key]
        assert m.timestamp() == (1, int(ts * 1000))  # CreateTime, the record's own


def test_faust_agent_and_table_on_kafka_4(kafka_bootstrap: str, kafka_topics, tmp_path: Path) -> None:
    partitions, n, keys = 2, 200, ["a", "b", "c", "d"]
    expected = {k: n // len(keys) for k in keys}
    source, sink = kafka_topics("faust-in", "faust-out", partitions=partitions)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for i in range(n):
        producer.produce(source, key=keys[i % len(keys)], value=json.dumps({"i": i}))
    assert producer.flush(30) == 0
    app_id = f"driftline-test-{uuid.uuid4().hex[:8]}"

    first, counts = _make_faust_app(app_id, kafka_bootstrap, tmp_path / "run1", source, sink, partitions)
    changelog = counts.changelog_topic.get_topic_name()
    assert asyncio.run(asyncio.wait_for(_run_until(first, counts, expected), timeout=100)) == expected

    out = _consume_all(kafka_bootstrap, sink, n)
    assert len(out) == n
    per_key: dict[str, list[int]] = defaultdict(list)
    for m in out:
        per_key[m.key().decode()].append(json.loads(m.value())["count"])
    # the agent saw each key's events in order: counts 1..n/k on the key's partition
    assert {k: sorted(c) for k, c in per_key.items()} == {k: list(range(1, n // len(keys) + 1)) for k in keys}
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert changelog in topics, "faust created its changelog topic through aiokafka's CreateTopics"
    assert len(topics[changelog].partitions) == partitions

    # A restarted worker (empty local store) recovers the table from the changelog and resumes from
    # the committed offsets: nothing is counted twice.
    second, counts2 = _make_faust_app(app_id, kafka_bootstrap, tmp_path / "run2", source, sink, partitions)
    recovered = asyncio.run(
        asyncio.wait_for(_run_until(second, counts2, expected, settle_s=1.0), timeout=100)
    )
    assert recovered == expected
    assert _records_in(kafka_bootstrap, sink, partitions) == n, "the restarted worker reprocessed events"


def _records_in(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        marks = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in range(partitions)
        ]
    finally:
        consumer.close()
    return sum(high - low for low, high in marks)
