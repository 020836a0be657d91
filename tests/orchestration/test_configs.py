"""SoftwareConfig, CloudConfig and MultipartMime: the config text in the stack's rows, and
a server whose user_data names a config (RAW / SOFTWARE_CONFIG) boots with its text."""

from __future__ import annotations

import base64
import email
from pathlib import Path
from typing import Any

import pytest
import yaml

from canopy.domain.errors import InvalidRequest
from canopy.store.models import ServerUserData
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle


async def _user_data(p: Plane) -> dict[str, str]:
    """Each live server's user data, decoded."""
    out: dict[str, str] = {}
    for vm in await live_servers(p):
        async with p.db.read() as s:
            row = await s.get(ServerUserData, vm.id)
        out[vm.id] = "" if row is None else base64.b64decode(row.data).decode()
    return out


SCRIPT = "#!/bin/sh\necho hello > /tmp/hi\n"


def _configs(fmt: str) -> dict[str, Any]:
    return hot(
        {
            "script": {
                "type": "OS::Heat::SoftwareConfig",
                "properties": {"group": "script", "config": SCRIPT},
            },
            "cloud": {
                "type": "OS::Heat::CloudConfig",
                "properties": {"cloud_config": {"packages": ["nginx"], "ssh_pwauth": False}},
            },
            "mime": {
                "type": "OS::Heat::MultipartMime",
                "properties": {
                    "parts": [
                        {"config": {"get_resource": "cloud"}},
                        {"config": {"get_resource": "script"}, "filename": "run.sh"},
                        {"config": "plain words", "subtype": "x-custom"},
                    ]
                },
            },
            "vm": server(user_data={"get_resource": "mime"}, user_data_format=fmt),
        },
        outputs={
            "cloud_text": {"value": {"get_attr": ["cloud", "config"]}},
            "mime_id": {"value": {"get_resource": "mime"}},
        },
    )


@pytest.mark.parametrize("fmt", ["RAW", "SOFTWARE_CONFIG"])
async def test_a_server_boots_with_the_text_of_the_config_it_names(
    db_url: str, tmp_path: Path, fmt: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "configured", _configs(fmt))
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        rows = await resources(p, sid)
        assert rows["script"].attributes == {"config": SCRIPT}
        cloud = rows["cloud"].attributes["config"]
        assert cloud.startswith("#cloud-config\n")
        assert yaml.safe_load(cloud) == {"packages": ["nginx"], "ssh_pwauth": False}

        mime = rows["mime"].attributes["config"]
        message = email.message_from_string(mime)
        assert message.is_multipart()
        parts = message.get_payload()
        assert isinstance(parts, list) and len(parts) == 3
        assert [p.get_content_type() for p in parts] == [
            "text/plain",
            "text/run",  # Heat's rule: the subtype is the file name without its extension
            "text/x-custom",
        ]
        assert parts[0].get_payload() == cloud
        assert parts[1].get_filename() == "run.sh" and parts[1].get_payload() == SCRIPT
        assert parts[2].get_payload() == "plain words"

        # The server got the message itself, not the config's id.
        assert await _user_data(p) == {rows["vm"].server_id: mime}
        assert rows["vm"].properties["user_data"] == rows["mime"].physical_resource_id
    finally:
        await p.close()


async def test_other_formats_and_unknown_ids_pass_user_data_as_it_is(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        stranger = "0d1e5c3a-3c55-4b7c-9a57-0f6d1f0d9a11"
        t = hot(
            {
                "cfg": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": "x"}},
                "cfn": server(user_data={"get_resource": "cfg"}),  # HEAT_CFNTOOLS
                "raw": server(user_data=stranger, user_data_format="RAW"),
            }
        )
        sid = await create(p, "as-is", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        rows = await resources(p, sid)
        got = await _user_data(p)
        assert got[rows["cfn"].server_id or ""] == rows["cfg"].physical_resource_id
        assert got[rows["raw"].server_id or ""] == stranger
    finally:
        await p.close()


async def test_a_multipart_part_of_type_multipart_is_flattened(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        t = hot(
            {
                "inner": {
                    "type": "OS::Heat::MultipartMime",
                    "properties": {
                        "parts": [{"config": "a"}, {"config": "b", "filename": "b.cfg"}]
                    },
                },
                "outer": {
                    "type": "OS::Heat::MultipartMime",
                    "properties": {
                        "parts": [
                            {"config": {"get_resource": "inner"}, "type": "multipart"},
                            {"config": "c"},
                        ]
                    },
                },
            }
        )
        sid = await create(p, "nested-mime", t)
        assert (await settle(p, sid)).status == "COMPLETE"
        outer = (await resources(p, sid))["outer"].attributes["config"]
        parts = email.message_from_string(outer).get_payload()
        assert isinstance(parts, list)
        assert [x.get_payload() for x in parts] == ["a", "b", "c"]
        assert parts[1].get_filename() == "b.cfg"
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("rtype", "props", "words"),
    [
        ("OS::Heat::SoftwareConfig", {"config": "x", "inputs": ["bare"]}, "inputs"),
        ("OS::Heat::SoftwareConfig", {"configs": "x"}, "Unknown Property configs"),
        ("OS::Heat::CloudConfig", {"cloud_config": "not a map"}, "not a valid map"),
        ("OS::Heat::MultipartMime", {"parts": [{"filename": "x"}]}, "config not assigned"),
        ("OS::Heat::MultipartMime", {"parts": [{"config": "x", "type": "zip"}]}, "text or"),
        ("OS::Heat::MultipartMime", {"parts": [{"config": "x", "mode": 1}]}, "mode"),
    ],
)
async def test_bad_config_properties_are_refused(
    db_url: str, tmp_path: Path, rtype: str, props: dict[str, Any], words: str
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        with pytest.raises(InvalidRequest, match=words):
            await create(p, "bad", hot({"c": {"type": rtype, "properties": props}}))
    finally:
        await p.close()
