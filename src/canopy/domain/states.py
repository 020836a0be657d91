"""Server states: what the user wants, what the cloud says, and what Nova shows."""

from __future__ import annotations

from enum import StrEnum


class DesiredState(StrEnum):
    """What the user asked for; controllers drive the cloud towards it."""

    ACTIVE = "active"
    STOPPED = "stopped"
    DELETED = "deleted"


class RemoteState(StrEnum):
    """The shared vocabulary every driver translates its native states into."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    REBOOTING = "rebooting"
    ERROR = "error"
    DELETED = "deleted"
    UNKNOWN = "unknown"


class ServerStatus(StrEnum):
    """Nova's user-visible server status."""

    BUILD = "BUILD"
    ACTIVE = "ACTIVE"
    SHUTOFF = "SHUTOFF"
    REBOOT = "REBOOT"
    HARD_REBOOT = "HARD_REBOOT"
    ERROR = "ERROR"
    DELETED = "DELETED"
    UNKNOWN = "UNKNOWN"


class TaskState(StrEnum):
    """Nova's OS-EXT-STS:task_state: the step a server is in the middle of."""

    SCHEDULING = "scheduling"
    SPAWNING = "spawning"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    DELETING = "deleting"


class PowerAction(StrEnum):
    """Power operations a driver may support."""

    START = "start"
    STOP = "stop"
    REBOOT_SOFT = "reboot_soft"
    REBOOT_HARD = "reboot_hard"


class Ability(StrEnum):
    """Optional driver abilities, declared as data (see providers.base.Abilities)."""

    STOP_START = "stop_start"
    REBOOT = "reboot"
    KEYPAIRS = "keypairs"
    CHANGES_SINCE = "changes_since"
    HOSTS = "hosts"  # lists its physical hosts (Blazar's os-hosts, host reservations)
    # Runs every flavor at its exact size: the sim, or an OpenStack where canopy creates
    # its flavors (`manage_flavors`, admin credentials). Shown, never asked for.
    EXACT_FLAVORS = "exact_flavors"


class Phase(StrEnum):
    """Which controller owns a server row next. Every transition is a compare-and-set."""

    SCHEDULE = "schedule"  # placement controller: choose a cloud and claim capacity
    CREATE = "create"  # provisioning controller: create remotely (find by canopy id first)
    RESCHEDULE = "reschedule"  # provisioning controller: a boot failed; clean up, try again
    CONVERGE = "converge"  # sync controller: wait until the cloud reports the desired state
    POWER = "power"  # power controller: stop, start or reboot
    DELETE = "delete"  # power controller: delete remotely, release the claim
    STEADY = "steady"  # at rest: observed matches desired
    FAILED = "failed"  # ERROR; only a delete moves it on
    DONE = "done"  # deleted; kept for changes-since and audit
