"""The processor's start-up leaves its objects out of the cyclic collector's full passes, and the
objects it makes afterwards are collected as before."""

from __future__ import annotations

import gc
import weakref

from driftline.app.services import _freeze_startup_objects


class Node:
    me: object


def test_start_up_objects_are_frozen_and_later_cycles_still_collected() -> None:
    try:
        _freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules start-up imported, and their tables
        node = Node()
        node.me = node  # a cycle made while processing: only the cyclic collector frees it
        gone = weakref.ref(node)
        del node
        gc.collect()
        assert gone() is None and gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
