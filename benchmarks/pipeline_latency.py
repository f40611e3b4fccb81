"""Latency of `driftline process` at a fixed input rate: from a label's produce to its scored output.

A scored event exists once its label is read, so the clock starts when the label is produced (its
event time is the wall-clock time it is produced) and stops when the scored event reaches a consumer
of the scored topic: ``read_uncommitted`` (as the processor produced it) and ``read_committed`` (as a
downstream consumer in a transaction-aware mode sees it: after the processor's next commit,
``commit_interval`` = 1 s). Predictions and labels alternate at ``rate`` events/s in 5 ms ticks;
each label follows its prediction by :data:`~pipeline_stream.LAG` predictions; the first second after
the processor reads its first batch is left out (warm-up).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import msgspec
import numpy as np
from pipeline_kafka import Processors, producer

from driftline.config import DriftlineSettings

LAG = 200
WARMUP_S = 1.0


class _LabelTime(msgspec.Struct):
    label_time: float


def _generate(settings: DriftlineSettings, rate: float, stop: threading.Event, seed: int = 0) -> None:
    """Predictions and their labels at ``rate`` events/s until ``stop``, event time = produce time."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1000, 6))
    enc = msgspec.json.Encoder().encode
    p = producer(settings.kafka.bootstrap_servers, **{"linger.ms": 1})
    t_pred, t_lab = settings.topics.predictions, settings.topics.labels
    i, start = 0, time.time()
    while not stop.is_set():
        due = int((time.time() - start) * rate / 2)  # predictions due by now
        while i < due:
            now = time.time()
            feats: dict[str, Any] = {f"x{k}": float(x[i % 1000, k]) for k in range(6)}
            feats["c0"], feats["c1"] = "abc"[i % 3], "nsew"[i % 4]
            pred = {"prediction_id": f"p{i}", "model": "m0", "model_version": "1", "event_time": now}
            pred.update(features=feats, prediction=i % 2, score=float(x[i % 1000, 0] % 1))
            p.produce(t_pred, enc(pred), b"m0", timestamp=int(now * 1000))
            if i >= LAG:
                lab = {"prediction_id": f"p{i - LAG}", "model": "m0", "event_time": now, "label": i % 2}
                p.produce(t_lab, enc(lab), b"m0", timestamp=int(now * 1000))
            i += 1
        p.poll(0)
        time.sleep(0.005)
    p.flush(30)


def _listen(
    settings: DriftlineSettings, isolation: str, out: list[tuple[float, float]], stop: threading.Event
) -> None:
    """(label time, receipt time) of every scored event read until ``stop``."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"latency-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "fetch.wait.max.ms": 5,
        }
    )
    c.subscribe([settings.topics.scored])
    dec = msgspec.json.Decoder(_LabelTime).decode
    while not stop.is_set():
        for m in c.consume(num_messages=1000, timeout=0.05):
            if m.error() is None:
                out.append((dec(m.value()).label_time, time.time()))
    c.close()


def _percentiles(pairs: list[tuple[float, float]], since: float, until: float) -> dict[str, float]:
    lat = np.array([(got - t) * 1000 for t, got in pairs if since <= t <= until])
    if not len(lat):
        return {"n": 0}
    return {
        "n": int(len(lat)),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
    }


def latency(settings: DriftlineSettings, rate: float, seconds: float) -> dict[str, Any]:
    """Run one processor and the generator at ``rate`` events/s for ``seconds`` after its warm-up."""
    from pipeline_kafka import load

    load(settings, [], models=1)  # topics, and model m0 announced
    procs = Processors(settings, 2**62)
    produced, listened = threading.Event(), threading.Event()
    seen: dict[str, list[tuple[float, float]]] = {"read_uncommitted": [], "read_committed": []}
    threads = [threading.Thread(target=_generate, args=(settings, rate, produced), daemon=True)]
    threads += [
        threading.Thread(target=_listen, args=(settings, iso, seen[iso], listened), daemon=True)
        for iso in seen
    ]
    for th in threads:
        th.start()
    deadline = time.time() + 120
    while not procs.first and time.time() < deadline:
        time.sleep(0.05)
    since = procs.first + WARMUP_S
    time.sleep(max(0.0, since - time.time()) + seconds)
    until = time.time()
    produced.set()
    time.sleep(2.5)  # the last labels' outputs, committed at the next commit
    listened.set()
    procs.stop()
    ends = procs.wait(120)
    for th in threads:
        th.join(30)
    out: dict[str, Any] = {"rate": rate, "seconds": seconds, "rss_end_mb": round(ends[0][2], 1)}
    for iso, pairs in seen.items():
        out[iso] = _percentiles(pairs, since, until)
    return out
