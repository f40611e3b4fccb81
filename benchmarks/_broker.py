"""The benchmarks' one way to a broker: the given ``--bootstrap`` address, or a local Apache Kafka
started from ``.ci/kafka_local.py`` (jars assembled on first use) and stopped afterwards."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def broker(bootstrap: str | None = None) -> Iterator[tuple[str, str]]:
    """Yields (bootstrap address, description); a broker this started is stopped on exit."""
    if bootstrap is not None:
        yield bootstrap, "external broker"
        return
    if str(ROOT / ".ci") not in sys.path:
        sys.path.insert(0, str(ROOT / ".ci"))
    import kafka_local

    kafka_local.assemble()
    workdir = tempfile.mkdtemp(prefix="driftline-bench-kafka-")
    started = kafka_local.start(workdir)
    try:
        yield (
            started.bootstrap,
            f"Kafka {started.version} (local, started in {started.startup_s:.1f} s)",
        )
    finally:
        kafka_local.stop(workdir)
