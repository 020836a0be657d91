"""A servers/detail page's JSON written straight from its plain rows (issue 9, "pages cost
less CPU").

`views.server_detail` builds a dict of about 30 keys per server (after `views_of_plain`
has decoded the row into a `ServerView`) and orjson encodes the page: about 0.7 ms of CPU
for a page of 100, more than SQLite spends reading it. `DetailWriter` writes each entry's
text from the row as SQLite's driver returns it (times and JSON as text, booleans as 0/1):
the keys and constant values are literal text, the image's and flavor's fragments are
encoded once per request, times are cut from their stored text, and a string is put
between quotes as it is when it needs no escaping (`_string`).

The text is the bytes `orjson.dumps(server_detail(...))` gives for the same row, key for
key: a row the writer does not handle the common way (a fault, text that needs escaping,
an unusual time, address or metadata value) is rendered by that full path instead, entry
by entry, so what the writer does not know it never guesses. tests/api/compute/
test_page_json.py compares both for every status, microversion and caller, and checks
that the common rows do take the writer's way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from canopy.api.compute.common import host_id, reservation_id
from canopy.api.compute.server_view import isotime_of, views_of_plain
from canopy.api.compute.views import (
    NOSTATE,
    POWER_STATE,
    VM_STATE,
    ViewContext,
    embedded_flavor,
    host_status,
    hostname,
    image_of,
    mac_address,
    server_detail,
)
from canopy.store.types import decode_json, display_text

_VM_STATE_JSON = {status: f'"{state}"' for status, state in VM_STATE.items()}
_PROGRESS = frozenset({"ACTIVE", "BUILD"})
_FAULT = frozenset({"ERROR", "DELETED"})
# The addresses of a server on one network with one address, as stored (json.dumps'
# separators): `_addresses` of it in one match, its strings needing no escape.
_ONE_ADDRESS = re.compile(
    r'\{"([^"\\\x00-\x1f]+)": \[\{"addr": "([^"\\\x00-\x1f]+)", "version": ([46])\}\]\}'
).fullmatch
# Larger ints are left to orjson (which refuses those past 64 bits).
_SMALL_INT = 1 << 53


def _plain(text: str) -> bool:
    """Whether orjson writes `text` as it is between quotes: every printable character
    but the quote and the backslash (checked against orjson for every code point in the
    tests); control characters, separators and lone surrogates are not printable."""
    return text.isprintable() and '"' not in text and "\\" not in text


def _string(text: str) -> str:
    if _plain(text):
        return '"' + text + '"'
    return orjson.dumps(text).decode()


def _nullable(text: str | None) -> str:
    return "null" if text is None else _string(text)


def _shown(t: str | None) -> str | None:
    """`views_of_plain`'s reading of a stored time, its common case inline."""
    if t is None:
        return None
    if t.__class__ is str and len(t) == 26 and t[10] == " " and t[0] != "0":
        return t.replace(" ", "T", 1)
    return display_text(t)


_Q, _TRUE_TEXT, _EMPTY = '"', '"True"', '""'
_FLAG = {True: ',"locked":true', False: ',"locked":false', None: ',"locked":null'}


def _iso(stored: Any) -> str:
    """`server_detail`'s created/updated of a stored time not in the common shape."""
    iso = isotime_of(display_text(stored))
    if iso is None:
        raise ValueError("no time")
    return iso


class DetailWriter:
    """One request's writer of servers/detail entries (its microversion, caller, links
    and the view context's tags, flavors, clouds and create requests)."""

    def __init__(self, vc: ViewContext) -> None:
        self.vc = vc
        at = vc.at
        self.admin = vc.admin
        self.v3 = 3 in at
        self.v9 = 9 in at
        self.v16 = 16 in at and vc.admin
        self.v19 = 19 in at
        self.v26 = 26 in at
        self.v63 = 63 in at
        self.v73 = 73 in at
        # A member's page below 2.9 ends with progress: the rest is past the volumes.
        self.short = not (vc.admin or self.v9)
        # The links' prefixes as JSON text without their closing quote (an id is plain).
        self.self_href = orjson.dumps(vc.self_prefix).decode()[:-1]
        self.bookmark_href = orjson.dumps(vc.bookmark_prefix).decode()[:-1]
        self.images: dict[tuple[str | None, bool], str] = {}
        self.flavors: dict[str, str] = {}

    def page(self, rows: Sequence[tuple[Any, ...]], links: list[dict[str, str]]) -> bytes:
        """The page's body: {"servers": [...], "servers_links": [...] when given}."""
        entries = []
        for row in rows:
            try:
                text = self.entry(row)
            except (TypeError, ValueError, AttributeError, LookupError):  # unusual values
                text = None
            entries.append(self.full(row) if text is None else text)
        body = '{"servers":[' + ",".join(entries) + "]"
        if links:
            body += ',"servers_links":' + orjson.dumps(links).decode()
        return (body + "}").encode()

    def full(self, row: tuple[Any, ...]) -> str:
        """The entry by the full path: `server_detail` over the decoded row."""
        view = views_of_plain([row], detail=True)[0]
        return orjson.dumps(server_detail(self.vc, view)).decode()

    def entry(self, row: tuple[Any, ...]) -> str | None:
        """One entry's JSON text, or None for a row the full path should render."""
        (
            sid, name, status, deleted, project, user, metadata, cloud, image_id,
            from_volume, flavor_id, created, updated, addresses, zone, config_drive,
            key_name, launched, terminated, task, observed, fault_code, fault_message,
            _fault_at, _remote_id, _launch_index, _locked, _description, _locked_reason,
            _group_id, _attempt_log,
        ) = row  # fmt: skip
        if deleted:
            status = "DELETED"
        if status in _FAULT and (fault_message is not None or fault_code is not None):
            return None  # a fault: rare, and built by the full path
        if created is None or updated is None:
            return None
        zone = cloud or zone or ""
        # Every string written as it is (times as stored: what is written of them is
        # their own characters, a "T" and a "Z"), checked at once, a None as "".
        written = (
            sid, name, status, project, user, created, updated, zone,
            key_name or "", launched or "", terminated or "", task or "",
        )  # fmt: skip
        if not _plain("".join(written)):
            return None
        # Times: `views_of_plain`'s reading and `isotime_of`, their common case inline
        # (SQLAlchemy's SQLite text, "YYYY-MM-DD HH:MM:SS.ffffff").
        if len(created) == 26 and created[10] == " " and created[4] == "-" and created[0] != "0":
            created = created[:19].replace(" ", "T", 1) + "Z"
        else:
            created = _iso(created)
        if len(updated) == 26 and updated[10] == " " and updated[4] == "-" and updated[0] != "0":
            updated = updated[:19].replace(" ", "T", 1) + "Z"
        else:
            updated = _iso(updated)
        if launched is None:
            launched = "null"
        elif len(launched) == 26 and launched[10] == " " and launched[0] != "0":
            launched = '"' + launched.replace(" ", "T", 1) + '"'
        else:
            launched = f'"{display_text(launched)}"'
        if terminated is not None:
            terminated = f'"{_shown(terminated)}"'
        vm_state = _VM_STATE_JSON.get(status, "null")
        if metadata is None or metadata == "{}":
            meta = "{}"
        else:
            # Nova's metadata maps strings to strings; anything else (nested values, which
            # orjson might refuse deeper in a page than alone) is the full path's.
            decoded = decode_json(metadata) or {}
            if decoded.__class__ is not dict or not all(
                value.__class__ is str for value in decoded.values()
            ):
                return None
            meta = orjson.dumps(decoded).decode()
        if addresses is None or addresses == "{}" or vm_state == '"building"':
            addrs: str | None = "{}"
        else:
            one = _ONE_ADDRESS(addresses)
            if one is not None:
                net, addr, version = one.groups()
                addrs = (
                    f'{{"{net}":[{{"addr":"{addr}","version":{version},"OS-EXT-IPS:type":'
                    f'"fixed","OS-EXT-IPS-MAC:mac_addr":"{mac_address(sid, net)}"}}]}}'
                )
            else:
                addrs = self._addresses(sid, decode_json(addresses))
                if addrs is None:
                    return None
        image = self.images.get((image_id, bool(from_volume)))
        if image is None:
            image = self._image(image_id, bool(from_volume))
        flavor = self.flavors.get(flavor_id)
        if flavor is None:
            flavor = self._flavor(flavor_id)
        if self.short:
            tail = ',"progress":0}' if status in _PROGRESS else "}"
        else:
            tail = self._tail(row, status)
        return (
            f'{{"id":"{sid}","name":"{name}","status":"{status}","tenant_id":"{project}",'
            f'"user_id":"{user}","metadata":{meta},"hostId":"{host_id(project, cloud)}",'
            f'"image":{image},"flavor":{flavor},"created":"{created}",'
            f'"updated":"{updated}","addresses":{addrs},"accessIPv4":"",'
            f'"accessIPv6":"","links":[{{"rel":"self","href":{self.self_href}{sid}"}},'
            f'{{"rel":"bookmark","href":{self.bookmark_href}{sid}"}}],'
            f'"OS-DCF:diskConfig":"MANUAL","OS-EXT-AZ:availability_zone":"{zone}",'
            f'"config_drive":{_TRUE_TEXT if config_drive else _EMPTY},'
            f'"key_name":{"null" if key_name is None else f"{_Q}{key_name}{_Q}"},'
            f'"OS-SRV-USG:launched_at":{launched},'
            f'"OS-SRV-USG:terminated_at":{"null" if terminated is None else terminated},'
            '"security_groups":[{"name":"default"}],'
            f'"OS-EXT-STS:task_state":{"null" if task is None else f"{_Q}{task}{_Q}"},'
            f'"OS-EXT-STS:vm_state":{vm_state},'
            f'"OS-EXT-STS:power_state":{POWER_STATE.get(observed, NOSTATE)},'
            f'"os-extended-volumes:volumes_attached":[]{tail}'
        )

    def _tail(self, row: tuple[Any, ...], status: str) -> str:
        """What follows os-extended-volumes:volumes_attached, past a member's 2.1-2.8."""
        sid, name, cloud = row[0], row[1], row[7]
        remote_id, launch_index, locked, description, locked_reason = row[24:29]
        parts = []
        if status in _PROGRESS:
            parts.append(',"progress":0')
        if self.admin:
            parts.append(self._extended(sid, name, cloud, remote_id, launch_index))
        if self.v9:
            parts.append(_FLAG[locked if locked is None else bool(locked)])
        if self.v16:
            parts.append(f',"host_status":"{host_status(self.vc, cloud)}"')
        if self.v19:
            parts.append(',"description":' + _nullable(description))
        if self.v26:
            tags = self.vc.tags.get(sid)
            parts.append(',"tags":' + ("[]" if not tags else orjson.dumps(list(tags)).decode()))
        if self.v63:
            parts.append(',"trusted_image_certificates":null')
        if self.v73:
            parts.append(',"locked_reason":' + _nullable(locked_reason))
        parts.append("}")
        return "".join(parts)

    def _flavor(self, flavor_id: str) -> str:
        text = self.flavors[flavor_id] = orjson.dumps(embedded_flavor(self.vc, flavor_id)).decode()
        return text

    def _extended(
        self, sid: str, name: str, cloud: str | None, remote_id: str | None, launch_index: Any
    ) -> str:
        """`views._extended_attributes` (admins) as text."""
        text = (
            f',"OS-EXT-SRV-ATTR:host":{_nullable(cloud)},'
            f'"OS-EXT-SRV-ATTR:instance_name":{_string(remote_id or "")},'
            f'"OS-EXT-SRV-ATTR:hypervisor_hostname":{_nullable(cloud)}'
        )
        if not self.v3:
            return text
        if launch_index.__class__ is not int or not -_SMALL_INT < launch_index < _SMALL_INT:
            raise TypeError("not a launch index the writer writes")
        rid = self.vc.requests.get(sid)
        return text + (
            f',"OS-EXT-SRV-ATTR:hostname":{_string(hostname(name))},'
            '"OS-EXT-SRV-ATTR:kernel_id":"",'
            f'"OS-EXT-SRV-ATTR:launch_index":{launch_index},'
            '"OS-EXT-SRV-ATTR:ramdisk_id":"",'
            f'"OS-EXT-SRV-ATTR:reservation_id":{_nullable(reservation_id(rid) if rid else None)},'
            '"OS-EXT-SRV-ATTR:root_device_name":null,"OS-EXT-SRV-ATTR:user_data":null'
        )

    def _image(self, image_id: str | None, from_volume: bool) -> str:
        text = self.images[(image_id, from_volume)] = orjson.dumps(
            image_of(self.vc, image_id, from_volume)
        ).decode()
        return text

    def _addresses(self, sid: str, decoded: Any) -> str | None:
        """`views._addresses` as text, for networks of lists of {"addr", "version"}."""
        if not decoded:
            return "{}"
        if decoded.__class__ is not dict:
            return None
        nets = []
        for net, listed in decoded.items():
            items = []
            if listed.__class__ is list:
                mac = ""
                for a in listed:
                    if a.__class__ is not dict:
                        return None
                    addr = a.get("addr")
                    if not addr:
                        continue
                    if addr.__class__ is not str:
                        return None
                    version = a.get("version")
                    if not version:
                        version = 6 if ":" in addr else 4
                    elif version.__class__ is not int or not -_SMALL_INT < version < _SMALL_INT:
                        return None
                    mac = mac or mac_address(sid, net)
                    items.append(
                        f'{{"addr":{_string(addr)},"version":{version},'
                        f'"OS-EXT-IPS:type":"fixed","OS-EXT-IPS-MAC:mac_addr":"{mac}"}}'
                    )
            nets.append(_string(net) + ":[" + ",".join(items) + "]")
        return "{" + ",".join(nets) + "}"
