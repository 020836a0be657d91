"""The `openstack` driver: any Nova v2.1 through openstacksdk (another canopy included)."""
