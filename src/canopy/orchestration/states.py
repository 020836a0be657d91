"""Stack and resource states: Heat's `<ACTION>_<STATUS>` vocabulary."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    INIT = "INIT"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    ROLLBACK = "ROLLBACK"
    SUSPEND = "SUSPEND"
    RESUME = "RESUME"
    CHECK = "CHECK"
    ADOPT = "ADOPT"


class Status(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class Desired(StrEnum):
    """Whether a resource row stands for a resource of the current template."""

    PRESENT = "present"
    ABSENT = "absent"


STACK_TYPE = "OS::Heat::Stack"  # the resource type of stack-level events
