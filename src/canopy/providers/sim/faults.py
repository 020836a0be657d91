"""Seeded randomness of one sim cloud: API latencies, boot times and injected faults.

Everything random the sim does comes from here, from generators seeded by the cloud's
seed, so a run that failed can be replayed exactly by configuring the same seed.
"""

from __future__ import annotations

import math
import random


class Dice:
    """The sim's random draws, from two seeded streams.

    Faults and timings use separate streams so that changing a latency or boot jitter
    setting does not change which calls fail, and vice versa.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._faults = random.Random(seed)
        self._timing = random.Random(f"sim-timing-{seed}")

    def chance(self, rate: float) -> bool:
        """True with probability `rate` (one draw from the fault stream)."""
        # Draw even when the rate is 0 or 1, so the sequence of outcomes of a replayed run
        # does not shift when one fault kind is switched on or off.
        return self._faults.random() < rate

    def around(self, mean: float, jitter: float) -> float:
        """A duration around `mean` seconds, spread by the fraction `jitter`; never negative.

        Lognormal with sigma = `jitter` and its mean kept at `mean`: real API latencies and
        boot times have a long tail but never go below zero.
        """
        if mean <= 0.0:
            return 0.0
        if jitter <= 0.0:
            return mean
        return mean * math.exp(self._timing.gauss(0.0, jitter) - jitter * jitter / 2.0)
