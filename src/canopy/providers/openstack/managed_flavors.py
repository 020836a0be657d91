"""Canopy's own flavors in a child OpenStack (`manage_flavors = true`, admin credentials).

A canopy flavor boots as a child flavor of exactly its size and extra specs, created on
first use: `<prefix><flavor>` (`canopy-m1.small`), private (`os-flavor-access:is_public:
false`: the child's own users do not see it; the admin credentials that boot with it may
use it), with canopy's extra specs set on it (`POST /flavors/{id}/os-extra_specs`; Nova
takes none in the create itself), so that `hw:cpu_policy=dedicated` and the like reach the
child's Nova, which acts on them.

Nova flavors cannot change size, so when canopy's flavor no longer matches the one of that
name (an operator changed the flavor, its extra specs, or someone edited the child), the
driver heals it by creating `<prefix><flavor>-<vcpus>-<ram_mb>-<disk_gb>`, followed by
`-<8 hex digits>` of the SHA-256 of the sorted extra specs when there are any, and boots
with that from then on; the old one is left alone (the child's servers still refer to it;
delete it when they are gone). Both names follow from the size and extra specs alone, so
two workers healing at once agree, and a name taken meanwhile (409) is looked up instead
of made twice. A name past Nova's 255 characters (a long prefix, flavor name or id) keeps
its first 242 and ends in `~` and 12 hex digits of its SHA-256, still a function of the
size and extra specs alone.

A flavor is made, then given its extra specs: two calls. If the second fails, the flavor
is deleted again; if the process dies between them, the healed name (which names its
specs) is completed by the next worker that finds it with some of them missing, and a base
name left without them is healed like any other difference.

Without admin rights (Nova's 403 to the create or to the extra specs) the driver stops
trying for the life of the process and says so once (the cloud's `exact_flavors` ability,
and one warning in the log); flavors then boot as the mapped or nearest-fit flavor.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from canopy.domain.errors import AlreadyExists, CloudAuthError, CloudError, TransientError
from canopy.domain.specs import Resources

log = logging.getLogger("canopy.providers.openstack")


NAME_LENGTH = 255  # Nova's limit on a flavor name
EXTRA_SPECS = "extra_specs"  # the key of a flavor's extra specs in Nova's views (2.61+)


class Request(Protocol):
    """One call to the child's Nova (the driver's, under its concurrency limit)."""

    def __call__(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        body: Mapping[str, Any] | None = None,
        duplicate: bool = False,
        missing_ok: bool = False,
    ) -> Awaitable[Any]: ...


def fitted(name: str) -> str:
    """`name`, or when it is past Nova's limit, its start and a digest of the whole."""
    if len(name) <= NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{name[: NAME_LENGTH - 13]}~{digest}"


def specs_digest(specs: Mapping[str, str]) -> str:
    """8 hex digits of the SHA-256 of the extra specs, sorted by key (JSON)."""
    text = json.dumps(dict(specs), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def base_name(prefix: str, flavor: str) -> str:
    return fitted(f"{prefix}{flavor}")


def sized_name(
    prefix: str, flavor: str, want: Resources, specs: Mapping[str, str] | None = None
) -> str:
    name = f"{prefix}{flavor}-{want.vcpus}-{want.ram_mb}-{want.disk_gb}"
    return fitted(f"{name}-{specs_digest(specs)}" if specs else name)


def same_size(flavor: Mapping[str, Any], want: Resources) -> bool:
    return (
        int(flavor.get("vcpus") or 0) == want.vcpus
        and int(flavor.get("ram") or 0) == want.ram_mb
        and int(flavor.get("disk") or 0) == want.disk_gb
        and not flavor.get("OS-FLV-DISABLED:disabled")
    )


def specs_of(flavor: Mapping[str, Any]) -> dict[str, str]:
    """A child flavor's extra specs as listed (none when the listing has none: the keeper
    reads them first for the flavors it may choose, see `FlavorKeeper._read_specs`)."""
    return {str(k): str(v) for k, v in (flavor.get(EXTRA_SPECS) or {}).items()}


def choose(
    flavors: Iterable[Mapping[str, Any]],
    prefix: str,
    flavor: str,
    want: Resources,
    specs: Mapping[str, str] | None = None,
) -> tuple[Mapping[str, Any] | None, str]:
    """The child's managed flavor for `flavor` at size `want` with exactly `specs` if it
    exists, and otherwise the name to create: the base name if it is free, else the
    healed one. A healed name names its specs, so one of the right size missing some of
    them (a create whose extra specs never came) is still chosen, and the keeper completes
    it. A healed name taken by another size or other specs (edited by hand) is not ours to
    fix: (None, "")."""
    wanted = dict(specs or {})
    by_name = {str(f.get("name")): f for f in flavors}
    base = base_name(prefix, flavor)
    healed = sized_name(prefix, flavor, want, wanted)
    for name in (base, healed):
        found = by_name.get(name)
        if found is None or not same_size(found, want):
            continue
        have = specs_of(found)
        if have == wanted or (name == healed and have.items() <= wanted.items()):
            return found, name
    if base not in by_name:
        return None, base
    if healed not in by_name:
        return None, healed
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


def specs_path(flavor_id: str) -> str:
    return f"/flavors/{quote(flavor_id, safe='')}/os-extra_specs"


class FlavorKeeper:
    """Finds, creates and heals one cloud's managed flavors (see the module's docstring)."""

    def __init__(
        self,
        cloud: str,
        prefix: str,
        flavors: Callable[[bool], Awaitable[list[dict[str, Any]]]],
        request: Request,
    ) -> None:
        self.cloud = cloud
        self.prefix = prefix
        self.refused: str | None = None  # why the child will not let canopy make flavors
        self._flavors = flavors  # the child's flavors (True: re-read them)
        self._request = request
        self._lock = asyncio.Lock()

    async def flavor_id(
        self, flavor: str, want: Resources, specs: Mapping[str, str] | None = None
    ) -> str | None:
        """The id of the child's flavor of exactly `want` and `specs` for canopy's
        `flavor`, made if need be; None once the child has refused to make one (not
        admin)."""
        if self.refused is not None:
            return None
        wanted = dict(specs or {})
        async with self._lock:  # one create per flavor in this process
            try:
                return await self._find_or_make(flavor, want, wanted)
            except CloudAuthError as e:
                self.refused = (
                    f"the credentials may not create flavors or set their extra specs ({e}): "
                    "canopy's flavors boot as their mapped or nearest-fit flavor"
                )
                log.warning("cloud %s: %s", self.cloud, self.refused)
                return None

    async def _find_or_make(self, flavor: str, want: Resources, specs: dict[str, str]) -> str:
        name = ""
        for refresh in (False, True):
            found, name = await self._choose(refresh, flavor, want, specs)
            if found is not None:
                return await self._completed(found, specs)
        if not name:
            raise CloudError(
                f"cloud {self.cloud!r}: flavors {base_name(self.prefix, flavor)!r} and "
                f"{sized_name(self.prefix, flavor, want, specs)!r} both exist with another "
                f"size or other extra specs than {flavor}'s; delete one",
                cloud=self.cloud,
            )
        try:
            made = await self._request(
                "POST", "/flavors", "create flavor", body=create_body(name, want), duplicate=True
            )
        except AlreadyExists as e:  # made meanwhile by another worker: look it up
            found, _ = await self._choose(True, flavor, want, specs)
            if found is None:  # its extra specs are not set yet, or another one took it
                raise TransientError(
                    f"cloud {self.cloud!r}: flavor {name!r} was made meanwhile by someone "
                    "else and is not yet the one wanted; trying again",
                    cloud=self.cloud,
                ) from e
            return await self._completed(found, specs)
        made_id = str(made["flavor"]["id"])
        if specs:
            try:
                await self._set_specs(made_id, specs)
            except CloudError:
                await self._discard(made_id)
                raise
        await self._flavors(True)
        return made_id

    async def _choose(
        self, refresh: bool, flavor: str, want: Resources, specs: dict[str, str]
    ) -> tuple[Mapping[str, Any] | None, str]:
        listed = await self._flavors(refresh)
        await self._read_specs(listed, flavor, want, specs)
        return choose(listed, self.prefix, flavor, want, specs)

    async def _read_specs(
        self, listed: list[dict[str, Any]], flavor: str, want: Resources, specs: dict[str, str]
    ) -> None:
        """Nova lists extra specs from 2.61 on (and only where its policy lets the caller
        see them): the candidates listed without them are read one by one, and remembered
        in the (cached) listing."""
        names = {base_name(self.prefix, flavor), sized_name(self.prefix, flavor, want, specs)}
        for f in listed:
            if EXTRA_SPECS in f or str(f.get("name")) not in names or not same_size(f, want):
                continue
            data = await self._request(
                "GET", specs_path(str(f["id"])), "list flavor extra specs", missing_ok=True
            )
            f[EXTRA_SPECS] = dict((data or {}).get(EXTRA_SPECS) or {})

    async def _completed(self, found: Mapping[str, Any], specs: dict[str, str]) -> str:
        """`found`'s id, once it carries all of `specs` (see `choose`)."""
        found_id = str(found["id"])
        if specs_of(found) != specs:
            await self._set_specs(found_id, specs)
            await self._flavors(True)
        return found_id

    async def _set_specs(self, flavor_id: str, specs: dict[str, str]) -> None:
        """Nova's add-or-replace of extra specs (`POST /flavors/{id}/os-extra_specs`)."""
        await self._request(
            "POST", specs_path(flavor_id), "set flavor extra specs", body={EXTRA_SPECS: specs}
        )

    async def _discard(self, flavor_id: str) -> None:
        """Delete a flavor made a moment ago whose extra specs could not be set; a failure
        is only logged (a base name left behind is healed, a healed one completed)."""
        try:
            await self._request(
                "DELETE", f"/flavors/{quote(flavor_id, safe='')}", "delete flavor", missing_ok=True
            )
        except CloudError as e:
            log.warning("cloud %s: flavor %s kept without its specs: %s", self.cloud, flavor_id, e)
