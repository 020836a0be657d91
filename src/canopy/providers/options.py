"""Each driver's typed options, by driver name: the `[clouds.<driver>]` table of a cloud.

The registry is explicit: a driver's options model lives beside its driver
(providers/<driver>/options.py, pure pydantic, never importing an SDK), and one line
here names it. config.CloudSettings has one optional field per entry, named like the
driver, so every option is validated with the file and line it came from.
"""

from __future__ import annotations

from pydantic import BaseModel

from canopy.providers.ec2.options import Ec2Credentials, Ec2Options
from canopy.providers.openstack.options import OpenStackCredentials, OpenStackOptions
from canopy.providers.sim.options import SimSettings

# `[clouds.openstack]` is the driver's own model, under the name config has always used.
OpenStackCloudSettings = OpenStackOptions


DRIVER_OPTIONS: dict[str, type[BaseModel]] = {
    "sim": SimSettings,
    "ec2": Ec2Options,
    "openstack": OpenStackCloudSettings,
}

# Drivers whose options all have defaults: their table may be left out of the config.
OPTIONAL_TABLE = frozenset({"sim"})

# Credentials a cloud added at run time may carry (sealed in the database), by driver; a
# driver not named here takes none.
DRIVER_CREDENTIALS: dict[str, type[Ec2Credentials] | type[OpenStackCredentials]] = {
    "ec2": Ec2Credentials,
    "openstack": OpenStackCredentials,
}
