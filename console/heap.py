"""Keep garbage-collection pauses short: move the start-up heap out of the collector's view once."""

from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect once, then freeze every surviving object (``gc.freeze``) so later full collections skip them.

    A full (generation 2) collection walks every tracked object while holding the GIL, on whichever thread
    triggers it, so it stalls the event loop for as long as the heap is big: tens of milliseconds with
    Qt, the modules and an embedded sandbox loaded. Objects alive after start-up (modules, classes, the
    window, the sandbox's generated backlog) live until exit anyway; freezing them leaves the collector
    only what is allocated afterwards, such as the batches of a catch-up. Call it once, after start-up and
    before the first sync.

    Returns:
        How many objects are now frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
