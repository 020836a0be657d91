"""Canopy's own flavors in a child OpenStack (`manage_flavors = true`, admin credentials).

A canopy flavor boots as a child flavor of exactly its size, created on first use:
`<prefix><flavor>` (`canopy-m1.small`), private (`os-flavor-access:is_public: false`: the
child's own users do not see it; the admin credentials that boot with it may use it).

Nova flavors cannot change, so when canopy's flavor no longer matches the one of that name
(an operator changed `[[flavors]]`, or someone edited the child), the driver heals it by
creating `<prefix><flavor>-<vcpus>-<ram_mb>-<disk_gb>` and booting with that from then on;
the old one is left alone (the child's servers still refer to it; delete it when they are
gone). Both names follow from the size alone, so two workers healing at once agree, and a
name taken meanwhile (409) is looked up instead of made twice. A name past Nova's 255
characters (a long prefix, flavor name or id) keeps its first 242 and ends in `~` and 12
hex digits of its SHA-256, still a function of the size alone.

Without admin rights (Nova's 403 to the create) the driver stops trying for the life of the
process and says so once (the cloud's `exact_flavors` ability, and one warning in the log);
flavors then boot as the mapped or nearest-fit flavor.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from canopy.domain.errors import AlreadyExists, CloudAuthError, CloudError
from canopy.domain.specs import Resources

log = logging.getLogger("canopy.providers.openstack")


NAME_LENGTH = 255  # Nova's limit on a flavor name


def fitted(name: str) -> str:
    """`name`, or when it is past Nova's limit, its start and a digest of the whole."""
    if len(name) <= NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{name[: NAME_LENGTH - 13]}~{digest}"


def base_name(prefix: str, flavor: str) -> str:
    return fitted(f"{prefix}{flavor}")


def sized_name(prefix: str, flavor: str, want: Resources) -> str:
    return fitted(f"{prefix}{flavor}-{want.vcpus}-{want.ram_mb}-{want.disk_gb}")


def same_size(flavor: Mapping[str, Any], want: Resources) -> bool:
    return (
        int(flavor.get("vcpus") or 0) == want.vcpus
        and int(flavor.get("ram") or 0) == want.ram_mb
        and int(flavor.get("disk") or 0) == want.disk_gb
        and not flavor.get("OS-FLV-DISABLED:disabled")
    )


def choose(
    flavors: Iterable[Mapping[str, Any]], prefix: str, flavor: str, want: Resources
) -> tuple[Mapping[str, Any] | None, str]:
    """The child's managed flavor for `flavor` at size `want` if it exists, and otherwise
    the name to create: the base name if it is free, else the sized one. A sized name
    taken by a flavor of another size (edited by hand) is not ours to fix: (None, "")."""
    by_name = {str(f.get("name")): f for f in flavors}
    base = base_name(prefix, flavor)
    sized = sized_name(prefix, flavor, want)
    for name in (base, sized):
        found = by_name.get(name)
        if found is not None and same_size(found, want):
            return found, name
    if base not in by_name:
        return None, base
    if sized not in by_name:
        return None, sized
    return None, ""


def create_body(name: str, want: Resources) -> dict[str, Any]:
    """Nova's `POST /flavors` body for a private flavor of exactly `want`."""
    return {
        "flavor": {
            "name": name,
            "vcpus": want.vcpus,
            "ram": want.ram_mb,
            "disk": want.disk_gb,
            "os-flavor-access:is_public": False,
        }
    }


class FlavorKeeper:
    """Finds, creates and heals one cloud's managed flavors (see the module's docstring)."""

    def __init__(
        self,
        cloud: str,
        prefix: str,
        flavors: Callable[[bool], Awaitable[list[dict[str, Any]]]],
        create: Callable[[dict[str, Any]], Awaitable[Any]],
    ) -> None:
        self.cloud = cloud
        self.prefix = prefix
        self.refused: str | None = None  # why the child will not let canopy make flavors
        self._flavors = flavors  # the child's flavors (True: re-read them)
        self._create = create
        self._lock = asyncio.Lock()

    async def flavor_id(self, flavor: str, want: Resources) -> str | None:
        """The id of the child's flavor of exactly `want` for canopy's `flavor`, made if
        need be; None once the child has refused to make one (not admin)."""
        if self.refused is not None:
            return None
        async with self._lock:  # one create per flavor in this process
            for refresh in (False, True):
                found, name = choose(await self._flavors(refresh), self.prefix, flavor, want)
                if found is not None:
                    return str(found["id"])
            if not name:
                raise CloudError(
                    f"cloud {self.cloud!r}: flavors {base_name(self.prefix, flavor)!r} and "
                    f"{sized_name(self.prefix, flavor, want)!r} both exist with another size "
                    f"than {flavor}'s; delete one",
                    cloud=self.cloud,
                )
            try:
                made = await self._create(create_body(name, want))
            except AlreadyExists:  # made meanwhile by another worker: look it up
                found, _ = choose(await self._flavors(True), self.prefix, flavor, want)
                if found is None:
                    raise
                return str(found["id"])
            except CloudAuthError as e:
                self.refused = (
                    f"the credentials may not create flavors ({e}): canopy's flavors boot "
                    "as their mapped or nearest-fit flavor"
                )
                log.warning("cloud %s: %s", self.cloud, self.refused)
                return None
            await self._flavors(True)
            return str(made["flavor"]["id"])
