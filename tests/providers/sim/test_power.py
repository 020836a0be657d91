"""Power actions: stop, start and reboot take `action_seconds`; impossible ones are refused."""

from __future__ import annotations

import pytest

from canopy.domain.clock import FakeClock
from canopy.domain.errors import InvalidRequest, NotFound, TransientError
from canopy.domain.specs import RemoteServer
from canopy.domain.states import PowerAction, RemoteState
from canopy.providers.sim.driver import SimCompute

from .helpers import MakeSim, spec


async def _running(sim: SimCompute, clock: FakeClock) -> RemoteServer:
    created = await sim.create(spec())
    clock.advance(sim.settings.boot_seconds)
    return created


async def _state(sim: SimCompute, remote_id: str) -> RemoteState:
    got = await sim.get(remote_id)
    assert got is not None
    return got.state


async def test_stop_then_start(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(action_seconds=0.5)
    s = await _running(sim, clock)

    await sim.power(s.remote_id, PowerAction.STOP)
    # Still powering off: the cloud reports it running until the action completes.
    assert await _state(sim, s.remote_id) is RemoteState.RUNNING
    clock.advance(0.5)
    assert await _state(sim, s.remote_id) is RemoteState.STOPPED
    stopped = await sim.get(s.remote_id)
    assert stopped is not None and stopped.addresses == {"private": ["10.0.0.5"]}

    await sim.power(s.remote_id, PowerAction.START)
    assert await _state(sim, s.remote_id) is RemoteState.STOPPED
    clock.advance(0.5)
    assert await _state(sim, s.remote_id) is RemoteState.RUNNING


@pytest.mark.parametrize("action", [PowerAction.REBOOT_SOFT, PowerAction.REBOOT_HARD])
async def test_reboot_is_rebooting_then_running(
    make_sim: MakeSim, clock: FakeClock, action: PowerAction
) -> None:
    sim = make_sim(action_seconds=1.0)
    s = await _running(sim, clock)
    await sim.power(s.remote_id, action)
    assert await _state(sim, s.remote_id) is RemoteState.REBOOTING
    clock.advance(0.9)
    assert await _state(sim, s.remote_id) is RemoteState.REBOOTING
    clock.advance(0.1)
    assert await _state(sim, s.remote_id) is RemoteState.RUNNING


async def test_repeating_an_action_is_a_no_op(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(action_seconds=1.0)
    s = await _running(sim, clock)
    await sim.power(s.remote_id, PowerAction.START)  # already running
    assert await _state(sim, s.remote_id) is RemoteState.RUNNING
    await sim.power(s.remote_id, PowerAction.STOP)
    clock.advance(0.5)
    await sim.power(s.remote_id, PowerAction.STOP)  # under way: does not restart the clock
    clock.advance(0.5)
    assert await _state(sim, s.remote_id) is RemoteState.STOPPED
    await sim.power(s.remote_id, PowerAction.STOP)  # already stopped
    assert await _state(sim, s.remote_id) is RemoteState.STOPPED


async def test_a_different_action_while_one_is_under_way_is_transient(
    make_sim: MakeSim, clock: FakeClock
) -> None:
    sim = make_sim(action_seconds=1.0)
    s = await _running(sim, clock)
    await sim.power(s.remote_id, PowerAction.REBOOT_SOFT)
    with pytest.raises(TransientError, match="reboot is in progress"):
        await sim.power(s.remote_id, PowerAction.STOP)
    clock.advance(1.0)
    await sim.power(s.remote_id, PowerAction.STOP)
    clock.advance(1.0)
    assert await _state(sim, s.remote_id) is RemoteState.STOPPED


async def test_power_on_a_pending_server_is_refused(make_sim: MakeSim) -> None:
    sim = make_sim(boot_seconds=5.0)
    s = await sim.create(spec())
    with pytest.raises(InvalidRequest, match="cannot stop a server in state pending"):
        await sim.power(s.remote_id, PowerAction.STOP)
    assert await _state(sim, s.remote_id) is RemoteState.PENDING


async def test_power_on_an_errored_server_is_refused(make_sim: MakeSim) -> None:
    sim = make_sim(boot_failure_rate=1.0, boot_seconds=0.0)
    s = await sim.create(spec())
    with pytest.raises(InvalidRequest, match="cannot reboot a server in state error"):
        await sim.power(s.remote_id, PowerAction.REBOOT_HARD)


async def test_reboot_of_a_stopped_server_is_refused(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(action_seconds=0.0)
    s = await _running(sim, clock)
    await sim.power(s.remote_id, PowerAction.STOP)
    assert await _state(sim, s.remote_id) is RemoteState.STOPPED
    with pytest.raises(InvalidRequest, match="cannot reboot a server in state stopped"):
        await sim.power(s.remote_id, PowerAction.REBOOT_SOFT)


async def test_power_on_a_missing_or_deleted_server_is_not_found(make_sim: MakeSim) -> None:
    sim = make_sim()
    with pytest.raises(NotFound):
        await sim.power("no-such-server", PowerAction.START)
    s = await sim.create(spec())
    await sim.delete(s.remote_id)
    with pytest.raises(NotFound):
        await sim.power(s.remote_id, PowerAction.START)


async def test_out_of_band_stop_is_seen_by_canopy(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(action_seconds=0.5)
    s = await _running(sim, clock)
    await sim.power_out_of_band(s.remote_id, PowerAction.STOP)
    clock.advance(0.5)
    assert await _state(sim, s.remote_id) is RemoteState.STOPPED
