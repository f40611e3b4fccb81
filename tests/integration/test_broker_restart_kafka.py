"""The broker killed and started again under a running ``driftline process`` (exactly-once): the
processor stays alive across the outage and, read ``read_committed``, its output topics hold exactly
the records of an uninterrupted run -- no duplicate, none missing.

The broker is killed (SIGKILL: a crash), not stopped with SIGTERM. A single broker's controlled
shutdown can record a transaction that commits in its last ~0.1 s as complete without writing its
commit markers (Kafka 4.4.0, read in its logs with ``DumpLogSegments`` after three of four CI runs
lost or duplicated outputs that way): the transaction is then neither committed nor aborted as a
whole, which no client can repair. The processor believes the broker when that happens (the group's
offsets over its own, a snapshot past them not restored: ``TransactionalCheckpoint.settled``), and
``driftline bench faults --scenario broker`` still stops the broker with SIGTERM.

The test starts a broker of its own (``.ci/kafka_local.py``, free ports, in the test's directory):
the session's broker is shared with every other Kafka test and is not this test's to stop. While
the broker is away, every call of the processor into librdkafka must end by its deadline -- a
transaction that cannot commit is aborted (or its producer replaced), the owned partitions are
rewound to their committed state, and processing resumes once the broker is back.
"""

from __future__ import annotations

import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftline.app.services import collect_topic
from driftline.config import DriftlineSettings, KafkaSettings, StateSettings, Topics

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fault_kit import Outputs, Stream, end_offsets, make_stream, produce  # noqa: E402
from fault_run import OPTIONS, Run, own_outputs  # noqa: E402

pytestmark = pytest.mark.kafka

EVENTS = 40_000  # ~8 s of processing on 2 shared cores: the broker goes away mid-stream


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A broker for this module alone; yields its work directory (``bootstrap`` holds its address)."""
    if os.environ.get("DRIFTLINE_SKIP_KAFKA", "") == "1":
        pytest.skip("DRIFTLINE_SKIP_KAFKA=1")
    kl = importlib.import_module("kafka_local")  # .ci is on pytest's pythonpath
    if os.environ.get("DRIFTLINE_TEST_BOOTSTRAP") and not kl.is_assembled():
        pytest.skip("the external broker of DRIFTLINE_TEST_BOOTSTRAP is not ours to restart (no local jars)")
    kl.assemble()
    workdir = tmp_path_factory.mktemp("kafka")
    kl.start(workdir, watch_pid=os.getpid())
    try:
        yield workdir
    finally:
        kl.stop(workdir)


@dataclass(frozen=True)
class Reference:
    """The input stream, produced once, and what an uninterrupted run committed from it."""

    settings: DriftlineSettings
    stream: Stream
    ends: dict[tuple[str, int], int]
    outputs: Outputs
    records: dict[str, Counter[bytes]]


@pytest.fixture(scope="module")
def reference(own_broker: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    bootstrap = (own_broker / "bootstrap").read_text().strip()
    run_id = uuid.uuid4().hex[:8]
    settings = DriftlineSettings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, partitions=4),
        topics=Topics(**{k: f"{v}.{run_id}" for k, v in Topics().model_dump().items()}),
        state=StateSettings(checkpoint_key=secrets.token_hex(32)),  # type: ignore[arg-type]
    )
    stream = make_stream(EVENTS, seed=11)
    produce(settings, stream)
    ends = end_offsets(settings)
    options = {**OPTIONS, "transactional_id": f"clean-{run_id}"}
    clean = Run("clean", settings, stream, ends, tmp_path_factory.mktemp("clean"), options=options)
    clean.timeout = 120
    try:
        procs = [clean.start()]
        clean.wait(lambda: clean.progress() >= 1.0, "every label scored", procs)
        out = clean.finish(procs)
    finally:
        clean.close()
    assert clean.crashes == [] and out.scored_ids == stream.labelled and out.scored == len(stream.labelled)
    return Reference(settings, stream, ends, out, everything(settings))


def restart_broker(workdir: Path, down_s: float) -> None:
    """Kill the broker (SIGKILL, a crash: see the module's docstring) and start it again ``down_s`` s
    later on the same storage and ports; returns once it answers metadata."""
    kl = importlib.import_module("kafka_local")
    control = importlib.import_module("kafka_broker_control")
    bootstrap = (workdir / "bootstrap").read_text().strip()
    control.stop(workdir, sig=signal.SIGKILL)
    time.sleep(down_s)
    props, log4j = (
        workdir / "server.properties",
        f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
    )
    cmd = [kl.check_java(), *kl.JVM_OPTS, log4j, "-cp", f"{kl.LIBS}/*", "kafka.Kafka", str(props)]
    with open(workdir / "broker-restarted.out", "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
            start_new_session=True,
        )  # fmt: skip
    (workdir / "broker.pid").write_text(f"{proc.pid}\n")  # the fixture's stop() stops this one
    host, port = bootstrap.split(":")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the restarted broker exited {proc.returncode}: see {workdir}"
        try:
            if control.api_versions(host, int(port)) and control.metadata_ok(bootstrap, 5.0):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the restarted broker did not answer within 60 s: see {workdir}")


def everything(settings: DriftlineSettings) -> dict[str, Counter[bytes]]:
    """Every committed record of every output topic, byte for byte, with its count."""
    t = settings.topics
    return {name: Counter(collect_topic(settings, name)) for name in (t.scored, t.metrics, t.alerts, t.dlq)}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("store", ["local", "changelog"])
def test_a_broker_restart_leaves_every_output_exactly_once(
    own_broker: Path, reference: Reference, tmp_path: Path, store: str
) -> None:
    state = reference.settings.state.model_copy(update={"store": store})
    settings = own_outputs(reference.settings).model_copy(update={"state": state})
    options = {**OPTIONS, "transactional_id": f"restart-{uuid.uuid4().hex[:8]}"}
    run = Run("restarted", settings, reference.stream, reference.ends, tmp_path, options=options)
    run.timeout = 150
    try:
        procs = [run.start()]
        run.wait(lambda: run.progress() >= 0.15, "progress 15%", procs)
        at = run.progress()
        restart_broker(own_broker, 5.0)
        run.wait(lambda: run.progress() >= 1.0, "every label scored", procs)
        out = run.finish(procs)
        got = everything(settings)
    finally:
        run.close()

    assert at < 0.9, f"the broker went away at {at:.0%} of the stream: too late to test anything"
    assert run.crashes == [] and run.started == 1, "the processor exited by itself"
    ref = reference.outputs
    assert out.scored == ref.scored and out.alerts == ref.alerts and out.metrics == ref.metrics
    names = dict(zip(got, ("scored", "metrics", "alerts", "dead letters"), strict=True))
    for (topic, got_records), want_records in zip(got.items(), reference.records.values(), strict=True):
        assert max(got_records.values(), default=1) == 1, f"{names[topic]}: a record was committed twice"
        assert got_records == want_records, f"{names[topic]} differ from the uninterrupted run's"
