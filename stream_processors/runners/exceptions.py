"""Errors the runners raise: a checkpoint that cannot be taken stops the runner, which then resumes
from its last good checkpoint (at-least-once)."""

from __future__ import annotations

from driftline.errors import DriftlineError

__all__ = ["DeliveryError", "RunnerFailed"]


class DeliveryError(DriftlineError):
    """Outputs were not delivered when a checkpoint flushed the sink: input offsets were not committed."""

    def __init__(self, undelivered: int, failed: int, timeout: float) -> None:
        super().__init__(
            f"checkpoint aborted: {undelivered} output(s) still queued after a {timeout:g} s flush and "
            f"{failed} delivery failure(s) since the last checkpoint; input offsets were NOT committed, "
            "so a restart replays these inputs. Check that the broker is reachable and that the output "
            "topics exist (driftline process creates them at start-up)."
        )
        self.undelivered = undelivered
        self.failed = failed


class RunnerFailed(DriftlineError):
    """A runner that failed mid-batch was asked to checkpoint: its state may be half-updated."""
