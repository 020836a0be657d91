"""The network a server boots on in a child OpenStack, against a genuine Nova: "auto", a
network by id (Nova checks it with its Neutron), and a wrong id refused by Nova itself."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from canopy.domain.errors import CloudError, TransientError
from canopy.domain.states import RemoteState
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.networks import is_uuid
from tests.interop.nova.harness import RealNova
from tests.providers.openstack.conftest import in_state, wait_for
from tests.providers.openstack.test_driver import servers_named, spec

# The network called "private" of the Neutron the harness's Nova talks to (Nova's own
# NeutronFixture); canopy reaches no Neutron here, so only ids and "auto" can be asked.
PRIVATE = "3cb9bc59-5699-4588-a4b1-b87f96708bc6"


@pytest.mark.parametrize("network", ["auto", PRIVATE])
async def test_a_server_boots_with_a_port_on_the_network_asked_for(
    make_driver: Callable[..., OpenStackCompute], real_nova: RealNova, network: str
) -> None:
    driver = make_driver(network=network)
    s = spec(real_nova)
    created = await driver.create(s)
    rid = created.remote_id
    await wait_for(lambda: driver.get(rid), in_state(RemoteState.RUNNING))
    [raw] = servers_named(real_nova, s.canopy_id)
    addresses = raw["addresses"]
    assert isinstance(addresses, dict) and "private" in addresses, addresses
    await driver.delete(rid)
    await wait_for(lambda: driver.get(rid), lambda r: r is None)


async def test_a_network_id_the_child_does_not_have_is_a_fault_not_a_retry(
    make_driver: Callable[..., OpenStackCompute], real_nova: RealNova
) -> None:
    driver = make_driver(network=str(uuid.uuid4()))
    s = spec(real_nova)
    with pytest.raises(CloudError) as failed:
        await driver.create(s)
    assert not isinstance(failed.value, TransientError)
    assert "network" in str(failed.value).lower(), failed.value
    assert servers_named(real_nova, s.canopy_id) == []


def test_only_ids_skip_the_neutron_look_up() -> None:
    assert is_uuid(PRIVATE) and is_uuid(PRIVATE.replace("-", ""))
    assert not is_uuid("private") and not is_uuid("net-" + PRIVATE)
