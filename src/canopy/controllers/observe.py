"""Turn what a cloud reports about a server into the server's status (one place for it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from canopy.domain.states import DesiredState, Phase, RemoteState, ServerStatus


def apply_observation(
    server: Any,
    state: RemoteState,
    observed_at: datetime,
    *,
    fault: str | None = None,
    addresses: dict[str, list[str]] | None = None,
) -> str | None:
    """Record an observation; converge status if it is newer than the last action.

    Returns a short description when the status changed (for the event log), else None.
    The cloud is the truth for power state, as in Nova: a server stopped or started behind
    canopy's back is shown as it is, and its desired state follows.
    """
    server.observed_state = state.value
    server.observed_at = observed_at
    if addresses:
        server.addresses = address_view(addresses)
    if server.action_at is not None and observed_at <= server.action_at:
        return None  # taken before our last action: says nothing about its outcome
    phase = server.phase
    if phase == Phase.CONVERGE:
        if state == RemoteState.ERROR:
            if server.status == ServerStatus.BUILD:
                server.phase = Phase.RESCHEDULE
                server.fault_message = fault or "the cloud reported the boot as failed"
                return "boot failed"
            return _error(server, observed_at, fault)
        done_rebooting = server.reboot_done >= server.reboot_requested
        running = state == RemoteState.RUNNING
        if running and server.desired_state == DesiredState.ACTIVE and done_rebooting:
            was = server.status
            _steady(server, ServerStatus.ACTIVE, observed_at)
            if server.launched_at is None:
                server.launched_at = observed_at
            return "active" if was == ServerStatus.BUILD else "running"
        if state == RemoteState.STOPPED and server.desired_state == DesiredState.STOPPED:
            _steady(server, ServerStatus.SHUTOFF, observed_at)
            return "stopped"
        return None
    if phase == Phase.STEADY:
        if state == RemoteState.RUNNING and server.status == ServerStatus.SHUTOFF:
            server.desired_state = DesiredState.ACTIVE
            _steady(server, ServerStatus.ACTIVE, observed_at)
            return "started outside canopy"
        if state == RemoteState.STOPPED and server.status == ServerStatus.ACTIVE:
            server.desired_state = DesiredState.STOPPED
            _steady(server, ServerStatus.SHUTOFF, observed_at)
            return "stopped outside canopy"
        if state == RemoteState.ERROR:
            return _error(server, observed_at, fault)
    return None


def address_view(addresses: dict[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
    """A cloud's addresses per network as the row (and Nova's `addresses`) keeps them."""
    return {
        net: [{"addr": a, "version": 6 if ":" in a else 4} for a in addrs]
        for net, addrs in addresses.items()
    }


def _steady(server: Any, status: ServerStatus, now: datetime) -> None:
    server.status = status.value
    server.task_state = None
    server.phase = Phase.STEADY
    server.updated_at = now


def _error(server: Any, now: datetime, fault: str | None) -> str:
    server.status = ServerStatus.ERROR.value
    server.task_state = None
    server.phase = Phase.FAILED
    server.fault_code = 500
    server.fault_message = fault or "the cloud reports the server in ERROR"
    server.fault_at = now
    server.updated_at = now
    return "error"
