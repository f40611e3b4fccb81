"""A pending request taken away by a rebalance and given back to the same worker is retrained, not
skipped as its own cooldown. Seen in ``bench faults --scenario "loop broker"`` (seed 2): the broker
restarted while the request waited for data, the group revoked and reassigned the retrain topic's
partitions, and the request read again was "skipped (cooldown: a retrain of churn began 0 s
earlier)" -- the retrain it had not begun yet -- so the loop ended without the promotion."""

from __future__ import annotations

from driftline.config import Topics
from driftline.contracts import encode
from driftline.transport import Record

TOPICS = Topics()


def test_a_request_revoked_while_it_waits_is_retrained_when_read_again(
    registry, make_worker, make_request, fill_scored
) -> None:
    worker = make_worker()
    first = Record(TOPICS.retrain, encode(make_request("a1", t=100.0)), b"churn", partition=0, offset=0)
    assert worker.submit_record(first) is None and list(worker.pending) == ["a1"]  # waits for data
    assert worker.forget([0]) == ["a1"]  # the broker went away: the partition was revoked

    assert worker.submit_record(first) is None, worker.outcomes  # assigned again: read again, pending
    later = Record(TOPICS.retrain, encode(make_request("a2", t=110.0)), b"churn", partition=0, offset=1)
    skipped = worker.submit_record(later)  # within a1's cooldown, as in an uninterrupted run
    assert skipped is not None and skipped.status == "skipped" and "cooldown" in skipped.reason

    fill_scored(concept=1, n=2000, start=100)
    (out,) = worker.step()
    assert (out.request_id, out.status, out.version) == ("a1", "promoted", "2")
    assert [v.version for v in registry.versions("churn")] == ["1", "2"]
