"""The start-up heap, moved out of the garbage collector's way once a process is up.

A serving process holds about 176,000 long-lived objects after start-up (modules,
classes, the app's routes, SQLAlchemy's mappers and compiled caches), none of which ever
becomes garbage. Every full collection walked them all, 75-85 ms each, freeing nothing,
and that was the API's p99 (a request that met one waited for it). `gc.freeze()` moves
everything alive at that moment into a permanent generation the collector never scans;
collecting first keeps the garbage of start-up out of it.

The youngest generation is then collected every `YOUNG_THRESHOLD` allocations instead of
CPython's 700. A sync pass holds the cloud's listing (a few objects per server) for as long
as it compares and writes: at 700, collections of the young generations came every few
hundred microseconds of allocation, found the listing alive each time and promoted it, so
every full listing ended in the oldest generation and set off full collections that walked
every listing in flight: 100-400 ms pauses every few seconds with 100,000 servers over 20
clouds (measured with a `gc.callbacks` timer). Objects that die by reference counting, as
nearly all do, never meet a collection either way; the cyclic garbage of up to
`YOUNG_THRESHOLD` allocations waits a little longer to be freed. Side by side under the
same load, 60 s of `canopy up` with 20 sim clouds of 5,000 servers each: full collections
1 (930 ms) and 4.0 s in pauses over 10 ms at 700, none and 0.26 s at 50,000.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("canopy.heap")

YOUNG_THRESHOLD = 50_000  # allocations between collections of the youngest generation


def freeze_startup_heap() -> int:
    """Collect once, then freeze what is left; return how many objects were frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("froze %d start-up objects out of the garbage collector's scans", frozen)
    return frozen


def pace_collector(young: int = YOUNG_THRESHOLD) -> None:
    """Collect the youngest generation every `young` allocations; the older generations
    keep CPython's ratios (each after 10 of the one below it)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)
    log.debug("the youngest generation is collected every %d allocations", young)
