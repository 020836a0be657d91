"""The API's wake-up to the controllers in its process, naming the loops it has work for."""

from __future__ import annotations

import asyncio


class Wake(asyncio.Event):
    """An event set after a commit that gave the controllers work.

    `ask("placement")` names the loops the work is for, so a server create wakes
    placement alone and not every loop in the worker (each woken loop makes a pass: under
    a burst of creates that was more CPU than the creates themselves). `ask()` with no
    name, or a plain `set()`, wakes every loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self._loops: set[str] = set()
        self._every = False

    def ask(self, *loops: str) -> None:
        if loops:
            self._loops.update(loops)
        else:
            self._every = True
        self.set()

    def take(self) -> tuple[str, ...]:
        """The loops asked for since the last take (empty: every loop), and clear."""
        loops = () if self._every or not self._loops else tuple(sorted(self._loops))
        self._loops.clear()
        self._every = False
        self.clear()
        return loops
