"""Counting the event loop's turns in a test."""

from __future__ import annotations

import asyncio


class LoopTurns:
    """Counts the event loop's turns while it is entered: a task that adds one and gives
    the loop back, again and again (a step that never gives it back counts none)."""

    def __init__(self) -> None:
        self.n = 0
        self._task: asyncio.Task[None] | None = None

    async def _count(self) -> None:
        while True:
            self.n += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> LoopTurns:
        self._task = asyncio.create_task(self._count())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
