"""How often a canopy process's threads hand the GIL over: every 0.5 ms, not Python's 5 ms.

A serving process may run threads beside its event loop: the EC2 and OpenStack drivers
parse their answers in a pool, SQLite checkpoints run in another. The loop's thread lets
the GIL go at every SQLite step (each row) and every socket send; when a thread is running
Python at that moment, it takes the GIL and keeps it until its switch interval runs out,
and the loop waits up to that long each time: about an interval per row of a read
(bench/gil_convoy.py, three runs: a 100-row read's p99 0.2-1.2 s at 5 ms, 5-81 ms at
0.5 ms, beside a thread computing without pause). So no thread should compute beside the
loop for long (the sim reads its listing on the loop, in chunks: providers/sim/listing.py),
and while one does, a shorter interval bounds each wait. `/healthz` p99 under load with
100,000 servers (bench/loop_stalls.py, min and median of 2, alternated in one sitting,
while the sim still listed in a thread) was 31.8/33.7 and 32.1/34.5 ms at 5 ms,
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
