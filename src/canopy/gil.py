"""How often a canopy process's threads hand the GIL over: every 0.5 ms, not Python's 5 ms.

A serving process runs threads beside its event loop: a sim cloud reads its listing pages
in one (a page of 1,000 servers is 3-4 ms of Python), EC2 and OpenStack calls parse their
answers in a pool, SQLite checkpoints in another. While such a thread holds the GIL, the
loop cannot run a request even when one is ready; it asks for the GIL and gets it at the
thread's next switch, up to `sys.getswitchinterval()` later. At CPython's 5 ms, every
hand-off could add 5 ms to whatever the loop was about to answer, and under load they
added up: `/healthz` p99 under load with 100,000 servers (bench/loop_stalls.py, min and
median of 2, alternated in one sitting) was 31.8/33.7 and 32.1/34.5 ms at 5 ms,
24.5/24.6 and 27.1/28.1 ms at 1 ms, 22.3/23.5 ms at 0.5 ms. A shorter interval costs a
thread that computes alone nothing (it switches only when another thread waits); threads
that compute together switch more often: 200 EC2 boots on moto through 16 driver threads
(bench/real_clouds.py) took 2.04 and 1.96 s at 0.5 ms against 1.99 and 1.91 s at 5 ms,
alternated, about 2.5% more.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits for it


def shorten_switches(interval: float = SWITCH_INTERVAL) -> None:
    """Make a thread that holds the GIL hand it over after `interval` seconds when another
    thread (the event loop's) waits for it."""
    sys.setswitchinterval(interval)
