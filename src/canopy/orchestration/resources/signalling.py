"""What a resource type that takes signals adds to `ResourceType`.

The API checks a signal's body with `check_signal` (a 400 for a malformed one, before
anything is written) and writes it as a row; the engine later hands it to `signal`, in the
stack's step, which records what it did (`Handled.outcome`) and says whether the resource
has started an action the engine must now carry (`Handled.started`: a scaling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from canopy.orchestration.resources.base import Step
from canopy.store.models import StackResource


@dataclass(frozen=True)
class Handled:
    outcome: str
    started: bool = False


class TakesSignals(Protocol):
    @property
    def name(self) -> str: ...

    def check_signal(self, data: Any) -> dict[str, Any]:
        """The signal's body, checked and normalised (InvalidRequest if malformed)."""
        ...

    async def signal(self, step: Step, res: StackResource, data: dict[str, Any]) -> Handled:
        """Act on one signal sent to `res` (in the stack's step)."""
        ...
