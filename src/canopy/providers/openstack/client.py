"""The synchronous half of the driver: one openstacksdk connection and Nova's REST calls.

Everything here blocks (keystoneauth, requests); driver.py calls it through
`asyncio.to_thread`. Calls go through the connection's compute adapter with a pinned
microversion, so the bodies are Nova's own JSON whatever the SDK version, and every
error answer becomes a domain error (errors.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from canopy.domain.errors import CloudAuthError, CloudError, Unsupported
from canopy.providers.openstack.errors import fault_of, from_exception, from_status
from canopy.providers.openstack.options import OpenStackCredentials, OpenStackOptions
from canopy.providers.openstack.paging import every_server

# The newest microversion the driver speaks (canopy's own compute API goes this far);
# the child's maximum lowers it. 2.37 is the least: `networks: "none"` needs it.
WANTED_MICROVERSION = (2, 79)
LEAST_MICROVERSION = (2, 37)


def _fmt(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def cloud_region(
    name: str, options: OpenStackOptions, credentials: Mapping[str, str] | None = None
) -> Any:
    """The openstacksdk CloudRegion for `options` (reads clouds.yaml; no network).

    With `credentials = "stored"`, the sealed auth (`credentials`, opened by the worker)
    is used instead of any clouds.yaml or OS_* variable. Raises CloudError naming the cloud
    if the entry is missing or unusable (CloudAuthError if stored credentials are missing)."""
    from openstack import config as os_config
    from openstack import exceptions as sdk

    if options.credentials == "stored":
        return _stored_region(name, options, credentials)

    files = None
    if options.clouds_yaml is not None:
        path = Path(options.clouds_yaml).expanduser()
        if not path.is_file():
            raise CloudError(f"cloud {name!r}: clouds_yaml {str(path)!r} is not a file", cloud=name)
        files = [str(path)]
    kwargs: dict[str, Any] = {"api_timeout": options.api_timeout_seconds}
    if options.region_name is not None:
        kwargs["region_name"] = options.region_name
    if options.auth_url is not None:
        kwargs["auth_url"] = options.auth_url
    if options.endpoint_override is not None:
        kwargs["compute_endpoint_override"] = options.endpoint_override
    try:
        loader = os_config.OpenStackConfig(config_files=files, app_name="canopy")
        return loader.get_one(cloud=options.cloud or "envvars", **kwargs)
    except (sdk.SDKException, KeyError, ValueError) as e:
        raise CloudError(
            f"cloud {name!r}: cannot use clouds.yaml entry {options.cloud!r}: {e}", cloud=name
        ) from e


def _region_kwargs(options: OpenStackOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"api_timeout": options.api_timeout_seconds}
    if options.region_name is not None:
        kwargs["region_name"] = options.region_name
    if options.endpoint_override is not None:
        kwargs["compute_endpoint_override"] = options.endpoint_override
    return kwargs


def _stored_region(
    name: str, options: OpenStackOptions, credentials: Mapping[str, str] | None
) -> Any:
    """The CloudRegion of stored credentials: no file, no environment variable read."""
    from openstack import config as os_config
    from openstack import exceptions as sdk

    if not credentials:
        raise CloudAuthError(
            f"cloud {name!r}: no stored credentials: set them with `canopy cloud set {name} "
            "--credentials-file FILE`",
            cloud=name,
        )
    auth_type, auth = OpenStackCredentials.from_vault(dict(credentials))
    if options.auth_url is not None:
        auth["auth_url"] = options.auth_url
    try:
        loader = os_config.OpenStackConfig(
            load_yaml_config=False, load_envvars=False, app_name="canopy"
        )
        return loader.get_one(auth_type=auth_type, auth=auth, **_region_kwargs(options))
    except (sdk.SDKException, KeyError, ValueError) as e:
        # The SDK's message names options, never their values.
        raise CloudError(f"cloud {name!r}: stored credentials unusable: {e}", cloud=name) from e


class NovaClient:
    """Nova's API for one cloud, as plain JSON. Thread-safe: keystoneauth's session is."""

    def __init__(
        self, name: str, options: OpenStackOptions, credentials: Mapping[str, str] | None = None
    ) -> None:
        from openstack import connection

        self.name = name
        self.options = options
        self._conn = connection.Connection(config=cloud_region(name, options, credentials))
        self._microversion: str | None = None

    @property
    def microversion(self) -> str:
        """The microversion every call sends, agreed with the child on first use."""
        if self._microversion is None:
            data = self._conn.compute.get_endpoint_data()
            top = getattr(data, "max_microversion", None) if data is not None else None
            top = (int(top[0]), int(top[1])) if top else WANTED_MICROVERSION
            chosen = min(top, WANTED_MICROVERSION)
            if chosen < LEAST_MICROVERSION:
                raise Unsupported(
                    f"cloud {self.name!r}: its compute API goes up to {_fmt(top)}; canopy "
                    f"needs {_fmt(LEAST_MICROVERSION)} or newer",
                    cloud=self.name,
                )
            self._microversion = _fmt(chosen)
        return self._microversion

    def request(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
        microversion: str | None = None,
        zone: str | None = None,
        duplicate: bool = False,
    ) -> Any:
        """One call; its JSON body (None for an empty one, or a 404 when `missing_ok`).

        Raises the domain error for any failure (see errors.py; a `marker` in `params` is
        the listing's, for MarkerNotFound)."""
        try:
            resp = self._conn.compute.request(
                path,
                method,
                json=body,
                params=dict(params or {}),
                microversion=microversion or self.microversion,
                raise_exc=False,
            )
        except CloudError:
            raise
        except Exception as e:
            raise from_exception(e, cloud=self.name, operation=operation) from e
        if resp.status_code == 404 and missing_ok:
            return None
        if resp.status_code >= 400:
            raise from_status(
                resp.status_code,
                fault_of(resp.text),
                cloud=self.name,
                operation=operation,
                zone=zone,
                duplicate=duplicate,
                marker=(params or {}).get("marker"),
            )
        if not resp.content:
            return None
        return resp.json()

    def servers(self, params: Mapping[str, Any], operation: str) -> Iterator[dict[str, Any]]:
        """Every server of `GET /servers/detail` with `params`, page by page (paging.py)."""
        return every_server(self, params, operation, self.options.page_size)

    def servers_page(
        self, params: Mapping[str, Any], operation: str, marker: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of `GET /servers/detail` with `params`, after the server `marker`, and
        whether more follow. Nova orders them by creation, newest first, and caps a page
        at its own `max_limit`, with a `next` link when more follow. Raises MarkerNotFound
        when Nova no longer has the marker's server."""
        query = {**params, "limit": limit}
        if marker is not None:
            query["marker"] = marker
        page = self.request("GET", "/servers/detail", operation, params=query) or {}
        servers = list(page.get("servers") or [])
        links = page.get("servers_links") or []
        return servers, len(servers) >= limit or any(link.get("rel") == "next" for link in links)

    def close(self) -> None:
        self._conn.close()
